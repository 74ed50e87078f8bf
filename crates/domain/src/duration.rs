//! Lifetimes written as `600`, `600s`, `10m`, `24h` or `30d`.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid duration {0:?}: use seconds or a number followed by s, m, h or d (e.g. 600, 10m, 24h, 30d)")]
pub struct DurationError(pub String);

/// Parses a lifetime into seconds. Zero, negative and overflowing values are refused.
pub fn parse_seconds(text: &str) -> Result<i64, DurationError> {
    let err = || DurationError(text.to_owned());
    let trimmed = text.trim();
    let (digits, unit) = match trimmed.char_indices().last() {
        Some((index, c)) if c.is_ascii_alphabetic() => (&trimmed[..index], c),
        Some(_) => (trimmed, 's'),
        None => return Err(err()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let value: i64 = digits.parse().map_err(|_| err())?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(err()),
    };
    match value.checked_mul(factor) {
        Some(seconds) if seconds > 0 && seconds <= 10 * 366 * 86_400 => Ok(seconds),
        _ => Err(err()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_seconds("600"), Ok(600));
        assert_eq!(parse_seconds("45s"), Ok(45));
        assert_eq!(parse_seconds("10m"), Ok(600));
        assert_eq!(parse_seconds("24h"), Ok(86_400));
        assert_eq!(parse_seconds(" 30d "), Ok(2_592_000));
    }

    #[test]
    fn refusals() {
        for bad in ["", "m", "0", "-5", "10x", "1.5h", "99999999999999999999", "100000d"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
