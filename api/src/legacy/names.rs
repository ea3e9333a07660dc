//! Legacy pool and BFD profile names as Kubernetes object names.
//!
//! The legacy format allowed any string; an object name must be a DNS label here (MetalLB's
//! converter uses `^[a-z][-a-z0-9]{0,61}[a-z0-9]$`). A valid name is kept. Otherwise, as MetalLB
//! does: truncate to 63 characters, lowercase, `_` → `-`, drop everything before the first
//! letter (no letter at all is an error). Then, beyond MetalLB:
//!
//! Decision: every other character outside `[a-z0-9-]` (such as `.`, a space, or a non-ASCII
//! letter) also becomes `-`, and trailing `-` are trimmed. MetalLB leaves both in place and
//! produces a name the API server rejects (`pool.v4`, or a `-` left at the end by truncation).

/// A name fit for a pool or BFD profile object, or why there is none.
pub fn normalize_name(name: &str) -> Result<String, String> {
    if is_valid(name) {
        return Ok(name.to_string());
    }
    let truncated: String = name.chars().take(63).collect();
    let mapped: String = truncated
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            _ => '-',
        })
        .collect();
    let Some(first_letter) = mapped.find(|c: char| c.is_ascii_lowercase()) else {
        return Err(format!(
            "{name:?} cannot be made a valid object name: it has no letter a-z"
        ));
    };
    Ok(mapped[first_letter..].trim_end_matches('-').to_string())
}

/// A lowercase DNS label starting with a letter.
fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_valid_as_metallb_does_and_beyond() {
        let long = format!("{}_{}", "a".repeat(62), "tail");
        for (input, want) in [
            ("lan", "lan"),
            ("a", "a"),
            ("my-pool-2", "my-pool-2"),
            ("01-numbered-addresspool", "numbered-addresspool"),
            ("My_Pool", "my-pool"),
            ("_private", "private"),
            ("pool.v4", "pool-v4"),
            ("pool v4", "pool-v4"),
            ("pool_", "pool"),
            ("Zürich", "z-rich"),
            // Truncation leaves the `_` (now `-`) at the end: trimmed.
            (long.as_str(), "a".repeat(62).as_str()),
        ] {
            assert_eq!(normalize_name(input).as_deref(), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn a_name_without_a_letter_is_an_error() {
        assert_eq!(
            normalize_name("2024_01"),
            Err("\"2024_01\" cannot be made a valid object name: it has no letter a-z".into())
        );
    }

    #[test]
    fn normalized_names_are_valid_and_stable() {
        for input in ["01-x", "A.B.C", "x__", "-x-", "Über_pool"] {
            let once = normalize_name(input).unwrap();
            assert!(is_valid(&once), "{input:?} → {once:?}");
            assert_eq!(normalize_name(&once).unwrap(), once);
        }
    }
}
