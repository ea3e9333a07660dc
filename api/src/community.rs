//! BGP communities as MetalLB writes them: `AS:value` (two 16-bit numbers, RFC 1997) or
//! `large:global:local1:local2` (three 32-bit numbers, RFC 8092). Anything that has neither shape
//! may be the name of an alias from a Community object.

use std::fmt;

/// A parsed BGP community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Community {
    /// RFC 1997 community, `upper:lower`.
    Standard(u16, u16),
    /// RFC 8092 large community.
    Large(u32, u32, u32),
}

/// Why a community string is not a community.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    /// It has a community's shape but a bad number or marker: always an error.
    #[error("invalid community value {value:?}: {reason}")]
    InvalidValue { value: String, reason: String },
    /// It has neither shape: it may be an alias name.
    #[error("invalid community format {0:?}: expected AS:value or large:a:b:c")]
    InvalidFormat(String),
}

impl Community {
    /// Parses a community string.
    pub fn parse(text: &str) -> Result<Self, CommunityError> {
        let fields: Vec<&str> = text.split(':').collect();
        let bad = |reason: String| CommunityError::InvalidValue {
            value: text.to_string(),
            reason,
        };
        match fields.as_slice() {
            [a, b] => {
                let parse = |s: &str| {
                    s.parse::<u16>()
                        .map_err(|_| bad(format!("{s:?} is not a number from 0 to 65535")))
                };
                Ok(Self::Standard(parse(a)?, parse(b)?))
            }
            [marker, a, b, c] => {
                if *marker != "large" {
                    return Err(bad(format!(
                        "a large community is written large:<uint32>:<uint32>:<uint32>, not with {marker:?}"
                    )));
                }
                let parse = |s: &str| {
                    s.parse::<u32>()
                        .map_err(|_| bad(format!("{s:?} is not a number from 0 to 4294967295")))
                };
                Ok(Self::Large(parse(a)?, parse(b)?, parse(c)?))
            }
            _ => Err(CommunityError::InvalidFormat(text.to_string())),
        }
    }

    /// Whether this is a standard (RFC 1997) community, the only kind native BGP sends.
    pub fn is_standard(&self) -> bool {
        matches!(self, Self::Standard(..))
    }

    /// The ordering key MetalLB uses: a standard community counts as `value:0:0`.
    fn sort_key(&self) -> (u32, u32, u32) {
        match *self {
            Self::Standard(a, b) => ((u32::from(a) << 16) | u32::from(b), 0, 0),
            Self::Large(a, b, c) => (a, b, c),
        }
    }

    /// The 32-bit wire value of a standard community.
    pub fn standard_value(&self) -> Option<u32> {
        match *self {
            Self::Standard(a, b) => Some((u32::from(a) << 16) | u32::from(b)),
            Self::Large(..) => None,
        }
    }
}

impl PartialOrd for Community {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Community {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_key()
            .cmp(&other.sort_key())
            .then(self.is_standard().cmp(&other.is_standard()).reverse())
    }
}

/// FRR's spelling: `a:b` or `a:b:c` for large communities.
impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standard(a, b) => write!(f, "{a}:{b}"),
            Self::Large(a, b, c) => write!(f, "{a}:{b}:{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_and_large_communities_parse() {
        assert_eq!(
            Community::parse("65000:100"),
            Ok(Community::Standard(65000, 100))
        );
        assert_eq!(
            Community::parse("large:1:2:3"),
            Ok(Community::Large(1, 2, 3))
        );
        assert_eq!(Community::Standard(1, 2).standard_value(), Some(65538));
    }

    #[test]
    fn bad_numbers_are_value_errors_and_other_shapes_may_be_aliases() {
        assert!(matches!(
            Community::parse("65536:1"),
            Err(CommunityError::InvalidValue { .. })
        ));
        assert!(matches!(
            Community::parse("huge:1:2:3"),
            Err(CommunityError::InvalidValue { .. })
        ));
        assert!(matches!(
            Community::parse("large:1:2:x"),
            Err(CommunityError::InvalidValue { .. })
        ));
        assert!(matches!(
            Community::parse("no-export"),
            Err(CommunityError::InvalidFormat(_))
        ));
        assert!(matches!(
            Community::parse("1:2:3"),
            Err(CommunityError::InvalidFormat(_))
        ));
    }

    #[test]
    fn standard_sorts_as_value_zero_zero() {
        let mut v = vec![
            Community::Large(65536, 0, 1),
            Community::Standard(1, 0),
            Community::Standard(0, 5),
        ];
        v.sort();
        assert_eq!(
            v,
            vec![
                Community::Standard(0, 5),
                Community::Standard(1, 0),
                Community::Large(65536, 0, 1)
            ]
        );
    }
}
