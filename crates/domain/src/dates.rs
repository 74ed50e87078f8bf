//! Calendar dates as the Worksection API writes them (UTC): input `DD.MM.YYYY` or `YYYY-MM-DD`, output
//! `YYYY-MM-DD` and `YYYY-MM-DD HH:MM`.

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses `DD.MM.YYYY` or `YYYY-MM-DD` (years 1900 to 2999) into `YYYY-MM-DD`; `None` if malformed or impossible.
pub fn parse_date(text: &str) -> Option<String> {
    let text = text.trim();
    let parts: Vec<&str> = text.split(['.', '-']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (year, month, day) = if text.contains('.') && c.len() == 4 {
        (*c, *b, *a)
    } else if text.contains('-') && a.len() == 4 {
        (*a, *b, *c)
    } else {
        return None;
    };
    let digits = |s: &str, max_len| !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(year, 4) && digits(month, 2) && digits(day, 2)) {
        return None;
    }
    let (year, month, day): (i64, u32, u32) = (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?);
    if !(1900..=2999).contains(&year) || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

/// `YYYY-MM-DD` of a Unix time.
pub fn format_date(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM` of a Unix time.
pub fn format_datetime(unix: i64) -> String {
    let seconds = unix.rem_euclid(86_400);
    format!("{} {:02}:{:02}", format_date(unix), seconds / 3600, seconds % 3600 / 60)
}

/// Unix time of the start of a `YYYY-MM-DD` day.
pub fn date_start_unix(date: &str) -> Option<i64> {
    let normalized = parse_date(date)?;
    let (y, rest) = normalized.split_once('-')?;
    let (m, d) = rest.split_once('-')?;
    Some(days_from_civil(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_input_forms() {
        assert_eq!(parse_date("15.01.2021").as_deref(), Some("2021-01-15"));
        assert_eq!(parse_date("2021-01-15").as_deref(), Some("2021-01-15"));
        assert_eq!(parse_date("1.2.2024").as_deref(), Some("2024-02-01"));
        assert_eq!(parse_date("29.02.2024").as_deref(), Some("2024-02-29"));
        for bad in ["29.02.2023", "32.01.2021", "2021-13-01", "15/01/2021", "", "a.b.c", "15.01.21", "2021-01-15T00:00"]
        {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format_datetime(0), "1970-01-01 00:00");
        assert_eq!(format_datetime(1_610_365_020), "2021-01-11 11:37");
        assert_eq!(format_date(951_782_400), "2000-02-29");
        assert_eq!(date_start_unix("2000-02-29"), Some(951_782_400));
        for days in [-1000, 0, 11_016, 20_000, 400_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
