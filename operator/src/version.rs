//! Versions: the operator's own, the ones read back from running pods, and the skew policy
//! (which controller and speaker versions may run together). Pure; every comparison goes
//! through `semver`.
//!
//! Skew policy (docs/operator.md, "Upgrading"):
//! - the controller and the speakers have the same major version;
//! - a speaker is never newer than the controller (in major.minor) and at most one minor
//!   version older; patch versions never matter.
//!
//! An upgrade therefore changes the controller first and the speakers after it, a downgrade the
//! speakers first; and an upgrade or downgrade by more than one minor version at once is
//! refused, because half way through it the controller and the speakers would be two minor
//! versions apart.

use semver::Version;

/// The version of this operator: the workspace version.
pub fn operator() -> Version {
    Version::parse(env!("CARGO_PKG_VERSION")).expect("the crate version is semver")
}

/// A version as the `app.kubernetes.io/version` label carries it (`v0.2.0`, or `0.2.0`);
/// `None` for anything else.
pub fn from_label(text: &str) -> Option<Version> {
    Version::parse(text.strip_prefix('v').unwrap_or(text)).ok()
}

/// Why a controller and a speaker version may not run together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skew {
    #[error("controller {controller} and speaker {speaker} have different major versions")]
    Major {
        controller: Version,
        speaker: Version,
    },
    #[error("speaker {speaker} is newer than controller {controller}")]
    SpeakerNewer {
        controller: Version,
        speaker: Version,
    },
    #[error("speaker {speaker} is more than one minor version older than controller {controller}")]
    TooOld {
        controller: Version,
        speaker: Version,
    },
}

/// Whether a speaker of version `speaker` may run with a controller of version `controller`.
pub fn check_skew(controller: &Version, speaker: &Version) -> Result<(), Skew> {
    let pair = || (controller.clone(), speaker.clone());
    if controller.major != speaker.major {
        let (controller, speaker) = pair();
        return Err(Skew::Major {
            controller,
            speaker,
        });
    }
    if speaker.minor > controller.minor {
        let (controller, speaker) = pair();
        return Err(Skew::SpeakerNewer {
            controller,
            speaker,
        });
    }
    if controller.minor - speaker.minor > 1 {
        let (controller, speaker) = pair();
        return Err(Skew::TooOld {
            controller,
            speaker,
        });
    }
    Ok(())
}

/// The oldest release OLM may upgrade from straight to `to`: the start of the previous minor
/// version, so that every upgrade OLM offers is one the skew policy allows
/// (`olm.skipRange: >=<this> <to>`).
pub fn oldest_direct_upgrade(to: &Version) -> Version {
    Version::new(to.major, to.minor.saturating_sub(1), 0)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn the_operator_reports_the_workspace_version() {
        assert_eq!(operator().to_string(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn labels_are_read_with_or_without_the_v() {
        assert_eq!(from_label("v0.2.0"), Some(v("0.2.0")));
        assert_eq!(from_label("0.2.1"), Some(v("0.2.1")));
        assert_eq!(from_label("main"), None);
    }

    #[test]
    fn a_speaker_may_be_one_minor_behind_the_controller_and_never_ahead() {
        assert_eq!(check_skew(&v("0.3.0"), &v("0.3.7")), Ok(()));
        assert_eq!(check_skew(&v("0.3.2"), &v("0.2.0")), Ok(()));
        assert_eq!(
            check_skew(&v("0.3.0"), &v("0.1.9"))
                .unwrap_err()
                .to_string(),
            "speaker 0.1.9 is more than one minor version older than controller 0.3.0"
        );
        assert_eq!(
            check_skew(&v("0.2.0"), &v("0.3.0"))
                .unwrap_err()
                .to_string(),
            "speaker 0.3.0 is newer than controller 0.2.0"
        );
        assert_eq!(
            check_skew(&v("1.0.0"), &v("0.9.0"))
                .unwrap_err()
                .to_string(),
            "controller 1.0.0 and speaker 0.9.0 have different major versions"
        );
    }

    #[test]
    fn olm_may_skip_straight_to_a_release_only_from_the_previous_minor() {
        assert_eq!(oldest_direct_upgrade(&v("0.3.2")), v("0.2.0"));
        assert_eq!(oldest_direct_upgrade(&v("0.1.0")), v("0.0.0"));
        assert_eq!(oldest_direct_upgrade(&v("1.0.0")), v("1.0.0"));
    }
}
