//! The meaning of a `schedule`: five cron fields or one of the `@` macros the
//! reference page lists.
//!
//! The page's own pattern is loose (it is not anchored, so `61 * * * *`
//! passes) and, at the same time, narrower than cron: it has no names
//! (`MON-FRI`) and no `*/n` after the first field. nfcron checks meaning here
//! with messages that name the field at fault, and separately warns when the
//! page's pattern would refuse a schedule that means something
//! ([`fits_published_pattern`]).

use std::sync::LazyLock;

use regex::Regex;

/// The macros the reference page accepts.
pub const MACROS: &[&str] = &[
    "@annually",
    "@yearly",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

/// The pattern of the reference page (unanchored, as JSON Schema patterns
/// are), with its `\d` written `[0-9]` as ECMAScript reads it.
pub const PUBLISHED_PATTERN: &str = r"(@(annually|yearly|monthly|weekly|daily|hourly))|(((([0-9]+,)+[0-9]+|([0-9]+(\/|-)[0-9]+)|[0-9]+|\*) ?){5})";

static PUBLISHED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(PUBLISHED_PATTERN).expect("the published schedule pattern compiles")
});

/// Whether the reference page's pattern accepts `schedule`.
pub fn fits_published_pattern(schedule: &str) -> bool {
    PUBLISHED.is_match(schedule)
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    },
    Field {
        name: "weekday",
        min: 0,
        max: 7,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    },
];

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub minutes: u64,
    pub hours: u32,
    /// Bit d for day d (1..=31).
    pub days: u32,
    /// Bit m for month m (1..=12).
    pub months: u16,
    /// Bit w for weekday w (0 = Sunday .. 6); 7 is folded into 0.
    pub weekdays: u8,
    /// Whether day and weekday were restricted (not `*`): cron runs a job
    /// when *either* matches if both are.
    pub day_restricted: bool,
    pub weekday_restricted: bool,
}

/// Why a schedule means nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(pub String);

/// How far ahead [`Schedule::next_runs`] looks: a schedule such as
/// `0 0 30 2 *` never fires, and must not loop for ever.
const LOOKAHEAD_DAYS: i32 = 5 * 366;

impl Schedule {
    /// The next `n` times (UTC, whole minutes) strictly after `after`.
    /// Fewer when the schedule fires less often than that within five years.
    pub fn next_runs(&self, after: jiff::Timestamp, n: usize) -> Vec<jiff::Timestamp> {
        let mut runs = Vec::with_capacity(n);
        let start = after.to_zoned(jiff::tz::TimeZone::UTC).datetime();
        // The first candidate is the next whole minute.
        let first = start
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()
            .and_then(|t| t.checked_add(jiff::Span::new().minutes(1)).ok());
        let Some(first) = first else { return runs };
        let mut date = first.date();
        for day in 0..LOOKAHEAD_DAYS {
            if day > 0 {
                match date.tomorrow() {
                    Ok(next) => date = next,
                    Err(_) => break,
                }
            }
            if !self.fires_on(date) {
                continue;
            }
            let (from_hour, from_minute) = if day == 0 {
                (first.hour(), first.minute())
            } else {
                (0, 0)
            };
            for hour in from_hour..24 {
                if self.hours & (1 << hour) == 0 {
                    continue;
                }
                let min_start = if hour == from_hour { from_minute } else { 0 };
                for minute in min_start..60 {
                    if self.minutes & (1 << minute) == 0 {
                        continue;
                    }
                    let at = date.at(hour, minute, 0, 0);
                    if let Ok(ts) = at.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()) {
                        runs.push(ts);
                    }
                    if runs.len() == n {
                        return runs;
                    }
                }
            }
        }
        runs
    }

    /// Cron's day rule: when both day and weekday are restricted, either
    /// may match; otherwise the restricted one must.
    fn fires_on(&self, date: jiff::civil::Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let day_ok = self.days & (1 << date.day()) != 0;
        let weekday_ok = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.day_restricted, self.weekday_restricted) {
            (true, true) => day_ok || weekday_ok,
            (true, false) => day_ok,
            (false, true) => weekday_ok,
            (false, false) => true,
        }
    }
}

pub fn parse(schedule: &str) -> Result<Schedule, CronError> {
    if let Some(name) = schedule.strip_prefix('@') {
        return match name {
            "annually" | "yearly" => parse("0 0 1 1 *"),
            "monthly" => parse("0 0 1 * *"),
            "weekly" => parse("0 0 * * 0"),
            "daily" => parse("0 0 * * *"),
            "hourly" => parse("0 * * * *"),
            _ => Err(CronError(format!(
                "`@{name}` is not a schedule Northflank accepts; use one of {}",
                MACROS.join(", ")
            ))),
        };
    }
    let parts: Vec<&str> = schedule.split(' ').collect();
    if parts.iter().any(|p| p.is_empty()) || schedule.contains(['\t', '\n']) {
        return Err(CronError(
            "fields must be separated by single spaces, with none before or after".into(),
        ));
    }
    if parts.len() != 5 {
        return Err(CronError(format!(
            "expected 5 fields (minute hour day month weekday), found {}",
            parts.len()
        )));
    }
    let mut bits = [0u64; 5];
    for (i, (part, field)) in parts.iter().zip(FIELDS.iter()).enumerate() {
        bits[i] = parse_field(part, field)?;
    }
    let weekdays = bits[4];
    let weekdays = (weekdays | (weekdays >> 7)) & 0x7f;
    Ok(Schedule {
        minutes: bits[0],
        hours: bits[1] as u32,
        days: bits[2] as u32,
        months: bits[3] as u16,
        weekdays: weekdays as u8,
        day_restricted: parts[2] != "*",
        weekday_restricted: parts[4] != "*",
    })
}

fn parse_field(text: &str, field: &Field) -> Result<u64, CronError> {
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(CronError(format!("{} has an empty list item", field.name)));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| {
                    CronError(format!(
                        "{} step `{step}` is not a positive number",
                        field.name
                    ))
                })?;
                if step == 0 {
                    return Err(CronError(format!("{} step must be at least 1", field.name)));
                }
                (range, step)
            }
            None => (item, 1),
        };
        let (low, high) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a, field)?, value(b, field)?);
            if a > b {
                return Err(CronError(format!(
                    "{} range {a}-{b} runs backwards",
                    field.name
                )));
            }
            (a, b)
        } else {
            let a = value(range, field)?;
            // `5/15` means "from 5 to the end, every 15", as in Vixie cron.
            (a, if step > 1 { field.max } else { a })
        };
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

fn value(text: &str, field: &Field) -> Result<u32, CronError> {
    if let Some(i) = field
        .names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(text))
    {
        // Months are named from 1 (JAN = 1), weekdays from 0 (SUN = 0).
        return Ok(i as u32 + field.min);
    }
    let n: u32 = text.parse().map_err(|_| {
        let hint = if field.names.is_empty() {
            String::new()
        } else {
            format!(
                " (or {}-{})",
                field.names[0],
                field.names[field.names.len() - 1]
            )
        };
        CronError(format!(
            "{} `{text}` is not a number in {}-{}{hint}",
            field.name, field.min, field.max
        ))
    })?;
    if n < field.min || n > field.max {
        return Err(CronError(format!(
            "{} {n} is outside {}-{}",
            field.name, field.min, field.max
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        parse(s).expect_err(s).0
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(err("61 * * * *"), "minute 61 is outside 0-59");
        assert_eq!(err("0 24 * * *"), "hour 24 is outside 0-23");
        assert_eq!(err("0 0 0 * *"), "day 0 is outside 1-31");
        assert_eq!(err("0 0 * 13 *"), "month 13 is outside 1-12");
        assert_eq!(err("0 0 * * 8"), "weekday 8 is outside 0-7");
        assert_eq!(
            err("0 0 * * FOO"),
            "weekday `FOO` is not a number in 0-7 (or SUN-SAT)"
        );
        assert_eq!(
            err("0 0 * *"),
            "expected 5 fields (minute hour day month weekday), found 4"
        );
        assert_eq!(err("*/0 * * * *"), "minute step must be at least 1");
        assert_eq!(err("5-1 * * * *"), "minute range 5-1 runs backwards");
        assert!(err("@midnight").contains("not a schedule Northflank accepts"));
        assert!(err("0  3 * * *").contains("single spaces"));
    }

    #[test]
    fn understands_lists_ranges_steps_and_names() {
        let s = parse("*/15 9-17 1,15 JAN-MAR MON-FRI").expect("valid");
        assert_eq!(s.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(s.hours, (9..=17).map(|h| 1u32 << h).sum::<u32>());
        assert_eq!(s.days, 1 << 1 | 1 << 15);
        assert_eq!(s.months, 1 << 1 | 1 << 2 | 1 << 3);
        assert_eq!(s.weekdays, 0b0111110);
        assert!(s.day_restricted && s.weekday_restricted);
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        assert_eq!(parse("0 0 * * 7").expect("valid").weekdays, 1);
        assert_eq!(parse("0 0 * * SUN").expect("valid").weekdays, 1);
    }

    #[test]
    fn macros_expand() {
        assert_eq!(parse("@daily"), parse("0 0 * * *"));
        assert_eq!(parse("@yearly"), parse("0 0 1 1 *"));
    }

    fn runs(schedule: &str, after: &str, n: usize) -> Vec<String> {
        let after: jiff::Timestamp = after.parse().expect("timestamp");
        parse(schedule)
            .expect("valid")
            .next_runs(after, n)
            .iter()
            .map(|t| t.to_string())
            .collect()
    }

    #[test]
    fn next_runs_in_utc() {
        assert_eq!(
            runs("0 3 * * *", "2026-11-28T16:00:00Z", 3),
            [
                "2026-11-29T03:00:00Z",
                "2026-11-30T03:00:00Z",
                "2026-12-01T03:00:00Z"
            ]
        );
        assert_eq!(
            runs("*/15 * * * *", "2026-11-28T16:07:30Z", 3),
            [
                "2026-11-28T16:15:00Z",
                "2026-11-28T16:30:00Z",
                "2026-11-28T16:45:00Z"
            ]
        );
        // Strictly after: a run exactly now is not next.
        assert_eq!(
            runs("0 16 * * *", "2026-11-28T16:00:00Z", 1),
            ["2026-11-29T16:00:00Z"]
        );
        // Day and weekday both restricted: either matches (the 1st, or Mondays).
        assert_eq!(
            runs("0 0 1 * MON", "2026-11-28T00:00:00Z", 3),
            [
                "2026-11-30T00:00:00Z",
                "2026-12-01T00:00:00Z",
                "2026-12-07T00:00:00Z"
            ]
        );
        assert_eq!(
            runs("0 0 29 2 *", "2026-11-28T00:00:00Z", 1),
            ["2028-02-29T00:00:00Z"]
        );
        assert_eq!(
            runs("0 0 30 2 *", "2026-11-28T00:00:00Z", 1),
            Vec::<String>::new()
        );
    }

    #[test]
    fn published_pattern_is_applied_as_the_page_states() {
        assert!(fits_published_pattern("0 3 * * *"));
        assert!(fits_published_pattern("*/15 * * * *"));
        assert!(fits_published_pattern("@hourly"));
        assert!(!fits_published_pattern("0 */2 * * *"));
        assert!(!fits_published_pattern("0 9 * * MON-FRI"));
    }
}
