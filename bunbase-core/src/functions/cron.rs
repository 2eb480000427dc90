//! Cron expressions for scheduled functions, evaluated in UTC at minute
//! resolution.
//!
//! Five fields, `minute hour day-of-month month day-of-week`, with the
//! usual forms: `*`, numbers, lists (`1,5`), ranges (`1-5`), steps (`*/15`,
//! `10-50/10`, and `5/15` meaning `5-59/15`), month names `JAN`–`DEC` and
//! weekday names `SUN`–`SAT` (any case), day-of-week `0`–`7` with both `0`
//! and `7` Sunday, and the macros `@yearly`/`@annually`, `@monthly`,
//! `@weekly`, `@daily`/`@midnight` and `@hourly`.
//!
//! Days follow Vixie cron: when both day-of-month and day-of-week are
//! restricted, a day matches if either does (`0 0 13 * FRI` fires on every
//! 13th and on every Friday); when either starts with `*` (`*`, `*/2`), both
//! must match. The calendar is computed here from Unix seconds (proleptic
//! Gregorian, years 1970 to 9999).

use crate::error::Error;

/// The longest an expression may be, in bytes.
const MAX_LEN: usize = 256;

/// How many years after the starting one `next_after` looks. A schedule that
/// can fire at all fires within 8 years: the longest gap is between two
/// 29ths of February across 2100, which is not a leap year (2096 → 2104).
const SEARCH_YEARS: u64 = 8;

/// 10000-01-01T00:00:00Z: the calendar ends before this.
const END_SECS: u64 = 253_402_300_800;

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One of the five fields: its name in messages, its range, and the names
/// it accepts (the first name stands for `first_name_value`).
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    first_name_value: u32,
    names_hint: &'static str,
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    first_name_value: 0,
    names_hint: "",
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    first_name_value: 0,
    names_hint: "",
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    first_name_value: 0,
    names_hint: "",
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
    first_name_value: 1,
    names_hint: " or a month name (JAN-DEC)",
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &WEEKDAY_NAMES,
    first_name_value: 0,
    names_hint: " or a weekday name (SUN-SAT)",
};

/// A parsed cron schedule, evaluated in UTC at minute resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Bit `m` for minute `m` (0–59).
    minutes: u64,
    /// Bit `h` for hour `h` (0–23).
    hours: u32,
    /// Bit `d` for day `d` of the month (1–31).
    days_of_month: u32,
    /// Bit `m` for month `m` (1–12).
    months: u16,
    /// Bit `w` for weekday `w` (0 Sunday – 6 Saturday; a `7` sets bit 0).
    days_of_week: u8,
    /// The day-of-month field starts with `*` (Vixie's `DOM_STAR`).
    dom_star: bool,
    /// The day-of-week field starts with `*` (Vixie's `DOW_STAR`).
    dow_star: bool,
}

impl Schedule {
    /// Parses a five-field expression or a macro. Errors are
    /// [`Error::invalid`] and name the field and the token at fault.
    pub fn parse(expr: &str) -> Result<Schedule, Error> {
        if expr.len() > MAX_LEN {
            return Err(Error::invalid(format!(
                "cron expression is {} bytes long; at most {MAX_LEN} are allowed",
                expr.len()
            )));
        }
        parse_inner(expr).map_err(|message| Error::invalid(format!("cron {expr:?}: {message}")))
    }

    /// The first minute strictly after `after_unix_secs` at which it fires
    /// (Unix seconds, a multiple of 60), or None if never within 8 years
    /// (e.g. `0 0 30 2 *`) or before the year 10000.
    pub fn next_after(&self, after_unix_secs: u64) -> Option<u64> {
        let start = (after_unix_secs / 60 + 1).checked_mul(60)?;
        if start >= END_SECS {
            return None;
        }
        let (mut year, mut month, mut day) = civil_from_days(start / 86_400);
        let mut hour = (start % 86_400 / 3_600) as u32;
        let mut minute = (start % 3_600 / 60) as u32;
        let last_year = (year + SEARCH_YEARS).min(9_999);

        while year <= last_year {
            // The month: this one, a later one this year, or next year.
            match next_bit(u64::from(self.months), month) {
                Some(m) if m == month => {}
                Some(m) => (month, day, hour, minute) = (m, 1, 0, 0),
                None => {
                    (year, month, day, hour, minute) = (year + 1, 1, 1, 0, 0);
                    continue;
                }
            }
            // The day: the first matching one left in this month.
            let last_day = days_in_month(year, month);
            match (day..=last_day).find(|&d| self.day_matches(year, month, d)) {
                Some(d) if d == day => {}
                Some(d) => (day, hour, minute) = (d, 0, 0),
                None => {
                    (month, day, hour, minute) = (month + 1, 1, 0, 0);
                    if month > 12 {
                        (year, month) = (year + 1, 1);
                    }
                    continue;
                }
            }
            // The hour, then the minute; running out moves to the next day
            // or hour and goes round again.
            match next_bit(u64::from(self.hours), hour) {
                Some(h) if h == hour => {}
                Some(h) => (hour, minute) = (h, 0),
                None => {
                    (day, hour, minute) = (day + 1, 0, 0);
                    continue;
                }
            }
            match next_bit(self.minutes, minute) {
                Some(m) => {
                    let days = days_from_civil(year, month, day);
                    return Some(days * 86_400 + u64::from(hour) * 3_600 + u64::from(m) * 60);
                }
                None => (hour, minute) = (hour + 1, 0),
            }
        }
        None
    }

    /// Whether it fires in the minute that starts at `minute_unix_secs`
    /// (floored to the minute first).
    pub fn matches(&self, minute_unix_secs: u64) -> bool {
        if minute_unix_secs >= END_SECS {
            return false;
        }
        let (year, month, day) = civil_from_days(minute_unix_secs / 86_400);
        let hour = minute_unix_secs % 86_400 / 3_600;
        let minute = minute_unix_secs % 3_600 / 60;
        self.minutes & (1 << minute) != 0
            && self.hours & (1 << hour) != 0
            && self.months & (1 << month) != 0
            && self.day_matches(year, month, day)
    }

    /// The day rule: both fields must match, unless both are restricted, in
    /// which case either may.
    fn day_matches(&self, year: u64, month: u32, day: u32) -> bool {
        let by_month_day = self.days_of_month & (1 << day) != 0;
        let weekday = (days_from_civil(year, month, day) + 4) % 7; // 1970-01-01 was a Thursday
        let by_weekday = self.days_of_week & (1 << weekday) != 0;
        if self.dom_star || self.dow_star {
            by_month_day && by_weekday
        } else {
            by_month_day || by_weekday
        }
    }
}

/// Parses without the `cron "…": ` prefix, which the caller adds.
fn parse_inner(expr: &str) -> Result<Schedule, String> {
    let trimmed = expr.trim();
    if let Some(name) = trimmed.strip_prefix('@') {
        let equivalent = match name.to_ascii_lowercase().as_str() {
            "yearly" | "annually" => "0 0 1 1 *",
            "monthly" => "0 0 1 * *",
            "weekly" => "0 0 * * 0",
            "daily" | "midnight" => "0 0 * * *",
            "hourly" => "0 * * * *",
            _ => {
                return Err(format!(
                    "unknown macro {trimmed:?}; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
                ));
            }
        };
        return parse_inner(equivalent);
    }

    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    match fields.len() {
        5 => {}
        0 => return Err("the expression is empty".into()),
        6 => {
            return Err(
                "6 fields given, but only five fields are supported (minute hour day-of-month month day-of-week); there is no seconds field"
                    .into(),
            );
        }
        n => {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), {n} given"
            ));
        }
    }

    let minutes = parse_field(&MINUTE, fields[0])?;
    let hours = parse_field(&HOUR, fields[1])?;
    let days_of_month = parse_field(&DAY_OF_MONTH, fields[2])?;
    let months = parse_field(&MONTH, fields[3])?;
    let days_of_week = parse_field(&DAY_OF_WEEK, fields[4])?;
    // Sunday is both 0 and 7.
    let days_of_week = (days_of_week | days_of_week >> 7) & 0x7f;
    Ok(Schedule {
        minutes,
        hours: hours as u32,
        days_of_month: days_of_month as u32,
        months: months as u16,
        days_of_week: days_of_week as u8,
        dom_star: fields[2].starts_with('*'),
        dow_star: fields[4].starts_with('*'),
    })
}

/// One field's list of items, as a bitset (bit `v` for value `v`).
fn parse_field(field: &Field, text: &str) -> Result<u64, String> {
    let name = field.name;
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{name} {text:?} has an empty list item"));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(field, step, item)?)),
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (field.min, field.max)
        } else if let Some((low, high)) = range.split_once('-') {
            let (low, high) = (
                parse_value(field, low, item)?,
                parse_value(field, high, item)?,
            );
            if low > high {
                return Err(format!(
                    "{name} range {range} is reversed (write {high}-{low}?)"
                ));
            }
            (low, high)
        } else {
            let value = parse_value(field, range, item)?;
            // `5/15` is `5-max/15`.
            (value, if step.is_some() { field.max } else { value })
        };
        for value in (low..=high).step_by(step.unwrap_or(1) as usize) {
            bits |= 1 << value;
        }
    }
    Ok(bits)
}

/// A step: 1 up to the field's largest value.
fn parse_step(field: &Field, token: &str, item: &str) -> Result<u32, String> {
    let name = field.name;
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{name} step {token:?} in {item:?} is not a number"));
    }
    match token.parse::<u32>() {
        Ok(0) => Err(format!("{name} step 0 in {item:?} must be at least 1")),
        Ok(step) if step <= field.max => Ok(step),
        _ => Err(format!(
            "{name} step {token} in {item:?} is out of range 1-{}",
            field.max
        )),
    }
}

/// A number in the field's range, or one of its names.
fn parse_value(field: &Field, token: &str, item: &str) -> Result<u32, String> {
    let name = field.name;
    if token.is_empty() {
        return Err(format!("{name} {item:?} is missing a value"));
    }
    if token.bytes().all(|b| b.is_ascii_digit()) {
        return match token.parse::<u32>() {
            Ok(value) if (field.min..=field.max).contains(&value) => Ok(value),
            _ => Err(format!(
                "{name} {token} is out of range {}-{}",
                field.min, field.max
            )),
        };
    }
    field
        .names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(token))
        .map(|i| field.first_name_value + i as u32)
        .ok_or_else(|| format!("{name} {token:?} is not a number{}", field.names_hint))
}

/// The lowest set bit of `bits` at `from` or above.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = bits & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date in 1970..=9999 (Howard Hinnant's
/// `days_from_civil`, with eras of 400 years starting on 1 March).
fn days_from_civil(year: u64, month: u32, day: u32) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = u64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + u64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn s(expr: &str) -> Schedule {
        Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    /// The next `n` firings after `after`.
    fn firings(expr: &str, after: u64, n: usize) -> Vec<u64> {
        let schedule = s(expr);
        let mut out = Vec::new();
        let mut t = after;
        for _ in 0..n {
            t = schedule.next_after(t).unwrap();
            out.push(t);
        }
        out
    }

    fn rejected(expr: &str) -> String {
        let e = Schedule::parse(expr).expect_err(expr);
        assert_eq!(e.code(), ErrorCode::InvalidInput, "{expr}");
        e.to_string()
    }

    // Known instants (from `date -u -d … +%s`).
    const JAN_1_2024: u64 = 1_704_067_200; // 2024-01-01T00:00Z, a Monday
    const MAY_17_2024_1007: u64 = 1_715_940_420; // 2024-05-17T10:07Z, a Friday

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2024, 1, 1) * 86_400, JAN_1_2024);
        assert_eq!(days_from_civil(2104, 2, 29) * 86_400, 4_233_686_400);
        assert_eq!(days_from_civil(9999, 12, 31) * 86_400 + 86_400, END_SECS);
        for days in 0..END_SECS / 86_400 {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=days_in_month(y, m)).contains(&d));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn star_fires_every_minute() {
        assert_eq!(
            firings("* * * * *", JAN_1_2024 + 1, 3),
            [JAN_1_2024 + 60, JAN_1_2024 + 120, JAN_1_2024 + 180]
        );
        // Strictly after: a minute boundary itself is not the answer.
        assert_eq!(s("* * * * *").next_after(JAN_1_2024), Some(JAN_1_2024 + 60));
    }

    #[test]
    fn numbers_lists_and_ranges() {
        // 09:30 each day: 2024-05-17T10:07 → 2024-05-18T09:30 (1716024600).
        assert_eq!(
            s("30 9 * * *").next_after(MAY_17_2024_1007),
            Some(1_716_024_600)
        );
        // `1,5`: 00:01 and 00:05 of each hour, from 2024-01-01T00:00.
        assert_eq!(
            firings("1,5 * * * *", JAN_1_2024, 3),
            [JAN_1_2024 + 60, JAN_1_2024 + 300, JAN_1_2024 + 3_660]
        );
        assert_eq!(s("1-5 * * * *"), s("1,2,3,4,5 * * * *"));
        assert_eq!(s("1-3,7,10-11 * * * *"), s("1,2,3,7,10,11 * * * *"));
        assert_eq!(s("0 0-23 * * *"), s("0 * * * *"));
        assert_eq!(s("0 0 * 1-12 *"), s("0 0 * * *"));
    }

    #[test]
    fn steps() {
        assert_eq!(s("*/15 * * * *"), s("0,15,30,45 * * * *"));
        assert_eq!(s("10-50/10 * * * *"), s("10,20,30,40,50 * * * *"));
        assert_eq!(s("5/15 * * * *"), s("5,20,35,50 * * * *"));
        assert_eq!(s("0 */6 * * *"), s("0 0,6,12,18 * * *"));
        assert_eq!(s("0 0 * 2/5 *"), s("0 0 * 2,7,12 *"));
        // The field's largest value is a valid step (only the first value).
        assert_eq!(s("*/59 * * * *"), s("0,59 * * * *"));
    }

    #[test]
    fn every_quarter_hour_sequence() {
        // From 2024-05-17T10:07: 10:15, 10:30, 10:45, 11:00, 11:15.
        assert_eq!(
            firings("*/15 * * * *", MAY_17_2024_1007, 5),
            [
                1_715_940_900,
                1_715_941_800,
                1_715_942_700,
                1_715_943_600,
                1_715_944_500
            ]
        );
    }

    #[test]
    fn names_any_case() {
        assert_eq!(s("0 0 * JAN-MAR MON-FRI"), s("0 0 * 1-3 1-5"));
        assert_eq!(s("0 0 * jan,Jun,DeC sun,sat"), s("0 0 * 1,6,12 0,6"));
        assert_eq!(
            s("0 0 * feb-dec/2 mon-sat/2"),
            s("0 0 * 2,4,6,8,10,12 1,3,5")
        );
    }

    #[test]
    fn sunday_is_0_and_7() {
        assert_eq!(s("0 0 * * 7"), s("0 0 * * 0"));
        assert_eq!(s("0 0 * * 7"), s("0 0 * * SUN"));
        assert_eq!(s("0 0 * * 5-7"), s("0 0 * * 0,5,6"));
        assert_eq!(s("0 0 * * 0-7"), s("0 0 * * 0-6"));
        // 2024-05-17 (Fri) → Sunday 2024-05-19T00:00 (1716076800).
        assert_eq!(
            s("0 0 * * 7").next_after(MAY_17_2024_1007),
            Some(1_716_076_800)
        );
    }

    #[test]
    fn macros() {
        assert_eq!(s("@yearly"), s("0 0 1 1 *"));
        assert_eq!(s("@annually"), s("0 0 1 1 *"));
        assert_eq!(s("@monthly"), s("0 0 1 * *"));
        assert_eq!(s("@weekly"), s("0 0 * * 0"));
        assert_eq!(s("@daily"), s("0 0 * * *"));
        assert_eq!(s("@midnight"), s("0 0 * * *"));
        assert_eq!(s("@hourly"), s("0 * * * *"));
        assert_eq!(s(" @HOURLY "), s("0 * * * *"));
    }

    #[test]
    fn hourly_fires_on_the_hour() {
        // 2024-05-17T10:07 → 11:00 (1715943600), then every 3600 s.
        assert_eq!(
            firings("@hourly", MAY_17_2024_1007, 3),
            [1_715_943_600, 1_715_947_200, 1_715_950_800]
        );
        // 2024-12-31T23:59 (1735689540) → 2025-01-01T00:00 (1735689600).
        assert_eq!(s("@hourly").next_after(1_735_689_540), Some(1_735_689_600));
    }

    #[test]
    fn whitespace_between_fields_is_free() {
        assert_eq!(s("  0\t0  * *   *  "), s("0 0 * * *"));
    }

    #[test]
    fn next_after_crosses_boundaries() {
        // Hour: 2024-05-17T10:07 → 10:45 (1715942700) with `45 * * * *`.
        assert_eq!(
            s("45 * * * *").next_after(MAY_17_2024_1007),
            Some(1_715_942_700)
        );
        // Day: 2024-05-17T23:00 (1715986800) → 2024-05-18T00:00 (1715990400).
        assert_eq!(
            s("0 0 * * *").next_after(1_715_986_800),
            Some(1_715_990_400)
        );
        // Month: 2024-06-30T23:45 (1719791100) → 2024-07-01T00:00 (1719792000).
        assert_eq!(
            s("0 0 1 * *").next_after(1_719_791_100),
            Some(1_719_792_000)
        );
        // Year: 2024-12-31T23:59 (1735689540) → 2025-01-01T00:00 (1735689600).
        assert_eq!(s("@yearly").next_after(1_735_689_540), Some(1_735_689_600));
        // Month end in a common year: 2023-02-28T23:59 (1677628740) →
        // 2023-03-01T00:00 (1677628800).
        assert_eq!(
            s("0 0 * * *").next_after(1_677_628_740),
            Some(1_677_628_800)
        );
        // And in a leap year the 29th comes first: 2024-02-28T23:30
        // (1709163000) → 2024-02-29T00:00 (1709164800).
        assert_eq!(
            s("0 0 * * *").next_after(1_709_163_000),
            Some(1_709_164_800)
        );
        // Anything inside a minute goes to the next one.
        assert_eq!(
            s("* * * * *").next_after(MAY_17_2024_1007 + 59),
            Some(MAY_17_2024_1007 + 60)
        );
    }

    #[test]
    fn leap_day() {
        let leap = s("0 0 29 2 *");
        // 2024-03-01T00:00 (1709251200) → 2028-02-29T00:00 (1835395200).
        assert_eq!(leap.next_after(1_709_251_200), Some(1_835_395_200));
        // 2100 is not a leap year: 2096-03-01 (3981398400) → 2104-02-29
        // (4233686400), eight years on.
        assert_eq!(leap.next_after(3_981_398_400), Some(4_233_686_400));
        assert!(leap.matches(1_835_395_200));
        assert!(!leap.matches(1_835_395_200 + 60));
    }

    #[test]
    fn impossible_dates_never_fire() {
        assert_eq!(s("0 0 30 2 *").next_after(JAN_1_2024), None);
        assert_eq!(s("0 0 31 4,6,9,11 *").next_after(JAN_1_2024), None);
        assert_eq!(s("0 0 30 2 *").next_after(0), None);
    }

    #[test]
    fn end_of_the_calendar() {
        // 9999-12-31T23:59 (253402300740) is the last minute.
        let last = 253_402_300_740;
        assert_eq!(s("* * * * *").next_after(last - 60), Some(last));
        assert_eq!(s("* * * * *").next_after(last), None);
        assert_eq!(s("* * * * *").next_after(u64::MAX), None);
        assert!(!s("* * * * *").matches(u64::MAX));
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_restricted() {
        // From 2024-01-01 (Mon): Fridays 5, 12, 19, 26 Jan, 2 and 9 Feb, the
        // 13th of January (a Saturday) and the 13th of February (a Tuesday).
        assert_eq!(
            firings("0 0 13 * FRI", JAN_1_2024, 9),
            [
                1_704_412_800, // Fri 2024-01-05
                1_705_017_600, // Fri 2024-01-12
                1_705_104_000, // Sat 2024-01-13
                1_705_622_400, // Fri 2024-01-19
                1_706_227_200, // Fri 2024-01-26
                1_706_832_000, // Fri 2024-02-02
                1_707_436_800, // Fri 2024-02-09
                1_707_782_400, // Tue 2024-02-13
                1_708_041_600, // Fri 2024-02-16
            ]
        );
    }

    #[test]
    fn both_must_match_when_either_is_star() {
        // Only Fridays: `*` in day-of-month.
        assert_eq!(
            firings("0 0 * * FRI", JAN_1_2024, 2),
            [1_704_412_800, 1_705_017_600]
        );
        // Vixie counts a field starting with `*` as unrestricted, so
        // `*/2` (odd days) with Friday means odd-numbered Fridays:
        // 2024-01-05, then 2024-01-19.
        assert_eq!(
            firings("0 0 */2 * FRI", JAN_1_2024, 2),
            [1_704_412_800, 1_705_622_400]
        );
    }

    #[test]
    fn matches_agrees_with_next_after() {
        let exprs = [
            "*/15 * * * *",
            "0 0 13 * FRI",
            "30 9-17/2 * * MON-FRI",
            "5/20 */7 */3 * *",
            "0 0 29 2 *",
            "@hourly",
            "59 23 28-31 * *",
        ];
        // Six days from 2024-02-26T00:00 (1708905600), across the leap day
        // and the change of month.
        let from = 1_708_905_600;
        for expr in exprs {
            let schedule = s(expr);
            for m in (from..from + 6 * 86_400).step_by(60) {
                assert_eq!(
                    schedule.matches(m),
                    schedule.next_after(m - 60) == Some(m),
                    "{expr} at {m}"
                );
                // Seconds within the minute are floored.
                assert_eq!(
                    schedule.matches(m + 59),
                    schedule.matches(m),
                    "{expr} at {m}"
                );
            }
        }
    }

    #[test]
    fn rejects_out_of_range_values() {
        assert_eq!(
            rejected("61 * * * *"),
            r#"cron "61 * * * *": minute 61 is out of range 0-59"#
        );
        assert_eq!(
            rejected("0 24 * * *"),
            r#"cron "0 24 * * *": hour 24 is out of range 0-23"#
        );
        assert_eq!(
            rejected("0 0 0 * *"),
            r#"cron "0 0 0 * *": day-of-month 0 is out of range 1-31"#
        );
        assert_eq!(
            rejected("0 0 * 13 *"),
            r#"cron "0 0 * 13 *": month 13 is out of range 1-12"#
        );
        assert_eq!(
            rejected("0 0 * * 8"),
            r#"cron "0 0 * * 8": day-of-week 8 is out of range 0-7"#
        );
        assert_eq!(
            rejected("99999999999 * * * *"),
            r#"cron "99999999999 * * * *": minute 99999999999 is out of range 0-59"#
        );
    }

    #[test]
    fn rejects_wrong_field_counts() {
        assert_eq!(
            rejected("* * * *"),
            r#"cron "* * * *": expected 5 fields (minute hour day-of-month month day-of-week), 4 given"#
        );
        assert_eq!(
            rejected("0 0 0 1 1 * 2024"),
            r#"cron "0 0 0 1 1 * 2024": expected 5 fields (minute hour day-of-month month day-of-week), 7 given"#
        );
        assert_eq!(
            rejected("0 */5 * * * *"),
            r#"cron "0 */5 * * * *": 6 fields given, but only five fields are supported (minute hour day-of-month month day-of-week); there is no seconds field"#
        );
        assert_eq!(rejected("   "), r#"cron "   ": the expression is empty"#);
    }

    #[test]
    fn rejects_bad_lists_ranges_and_steps() {
        assert_eq!(
            rejected("1,,2 * * * *"),
            r#"cron "1,,2 * * * *": minute "1,,2" has an empty list item"#
        );
        assert_eq!(
            rejected("0 0 * * 1,"),
            r#"cron "0 0 * * 1,": day-of-week "1," has an empty list item"#
        );
        assert_eq!(
            rejected("5-1 * * * *"),
            r#"cron "5-1 * * * *": minute range 5-1 is reversed (write 1-5?)"#
        );
        assert_eq!(
            rejected("0 0 * * FRI-MON"),
            r#"cron "0 0 * * FRI-MON": day-of-week range FRI-MON is reversed (write 1-5?)"#
        );
        assert_eq!(
            rejected("*/0 * * * *"),
            r#"cron "*/0 * * * *": minute step 0 in "*/0" must be at least 1"#
        );
        assert_eq!(
            rejected("0 */24 * * *"),
            r#"cron "0 */24 * * *": hour step 24 in "*/24" is out of range 1-23"#
        );
        assert_eq!(
            rejected("*/x * * * *"),
            r#"cron "*/x * * * *": minute step "x" in "*/x" is not a number"#
        );
        assert_eq!(
            rejected("1-5/ * * * *"),
            r#"cron "1-5/ * * * *": minute step "" in "1-5/" is not a number"#
        );
        assert_eq!(
            rejected("/5 * * * *"),
            r#"cron "/5 * * * *": minute "/5" is missing a value"#
        );
        assert_eq!(
            rejected("1- * * * *"),
            r#"cron "1- * * * *": minute "1-" is missing a value"#
        );
        assert_eq!(
            rejected("1-2-3 * * * *"),
            r#"cron "1-2-3 * * * *": minute "2-3" is not a number"#
        );
    }

    #[test]
    fn rejects_unknown_names() {
        assert_eq!(
            rejected("0 0 * FOO *"),
            r#"cron "0 0 * FOO *": month "FOO" is not a number or a month name (JAN-DEC)"#
        );
        assert_eq!(
            rejected("0 0 * * FRIDAY"),
            r#"cron "0 0 * * FRIDAY": day-of-week "FRIDAY" is not a number or a weekday name (SUN-SAT)"#
        );
        // Names only where they belong.
        assert_eq!(
            rejected("0 0 MON * *"),
            r#"cron "0 0 MON * *": day-of-month "MON" is not a number"#
        );
        assert_eq!(
            rejected("0 0 * * JAN"),
            r#"cron "0 0 * * JAN": day-of-week "JAN" is not a number or a weekday name (SUN-SAT)"#
        );
        assert_eq!(
            rejected("-1 * * * *"),
            r#"cron "-1 * * * *": minute "-1" is missing a value"#
        );
        assert_eq!(
            rejected("@reboot"),
            r#"cron "@reboot": unknown macro "@reboot"; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"#
        );
    }

    #[test]
    fn rejects_long_expressions() {
        let long = format!("0 0 * * {}", "1,".repeat(200) + "1");
        assert_eq!(
            rejected(&long),
            "cron expression is 409 bytes long; at most 256 are allowed"
        );
        // 256 bytes is still fine.
        let edge = format!("{}0 0 * * *", " ".repeat(256 - 9));
        assert_eq!(edge.len(), 256);
        assert_eq!(s(&edge), s("0 0 * * *"));
    }
}
