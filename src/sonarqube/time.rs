//! SonarQube's timestamps (`2021-05-21T12:12:07+0000`) as unix milliseconds, so that
//! analyses of one commit can be put in the order SonarQube made them.

/// Unix milliseconds of an ISO-8601 date-time as SonarQube writes it: `T` or a space
/// between date and time, optional fractional seconds, and a zone of `Z`, `+HHMM`,
/// `+HH:MM` or `+HH` (none means UTC). `None` for anything else.
pub fn unix_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = (text.get(..10)?, text.get(10..)?);
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let year: i64 = number(date.get(..4)?)?;
    let month: i64 = number(date.get(5..7)?)?;
    let day: i64 = number(date.get(8..10)?)?;
    if date.as_bytes()[4] != b'-' || date.as_bytes()[7] != b'-' {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }

    let clock = rest.get(..8)?;
    let (hour, minute, second): (i64, i64, i64) = (
        number(clock.get(..2)?)?,
        number(clock.get(3..5)?)?,
        number(clock.get(6..8)?)?,
    );
    if clock.as_bytes()[2] != b':' || clock.as_bytes()[5] != b':' {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &rest[8..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix(['.', ',']) {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = number(&padded)?;
        rest = &fraction[digits..];
    }

    let offset_minutes = zone(rest)?;
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Minutes east of UTC.
fn zone(text: &str) -> Option<i64> {
    if text.is_empty() || text.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match text.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    let shape_ok = matches!(digits.len(), 2 | 4) && text.len() <= 6;
    if !shape_ok || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = number(&digits[..2])?;
    let minutes: i64 = if digits.len() == 4 {
        number(&digits[2..])?
    } else {
        0
    };
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 60 + minutes))
}

fn number(text: &str) -> Option<i64> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())
        .flatten()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::unix_ms;

    #[test]
    fn sonarqube_timestamps_in_every_zone_form_give_the_same_instant() {
        let utc = unix_ms("2021-05-21T12:12:07+0000").unwrap();
        assert_eq!(utc, 1_621_599_127_000);
        assert_eq!(unix_ms("2021-05-21T12:12:07Z"), Some(utc));
        assert_eq!(unix_ms("2021-05-21T14:12:07+02:00"), Some(utc));
        assert_eq!(unix_ms("2021-05-21T07:12:07-0500"), Some(utc));
        assert_eq!(unix_ms("2021-05-21T12:12:07.250+0000"), Some(utc + 250));
        assert_eq!(unix_ms("1970-01-01T00:00:00+0000"), Some(0));
        assert_eq!(unix_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
    }

    #[test]
    fn anything_else_is_no_time() {
        for text in [
            "",
            "yesterday",
            "2021-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2021-05-21T25:00:00Z",
            "2021-05-21T12:12:07+0000x",
            "2021-05-21",
            "2021-05-21T12:12:07.+0000",
        ] {
            assert_eq!(unix_ms(text), None, "{text}");
        }
    }
}
