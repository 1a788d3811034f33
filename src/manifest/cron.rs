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

    #[test]
    fn published_pattern_is_applied_as_the_page_states() {
        assert!(fits_published_pattern("0 3 * * *"));
        assert!(fits_published_pattern("*/15 * * * *"));
        assert!(fits_published_pattern("@hourly"));
        assert!(!fits_published_pattern("0 */2 * * *"));
        assert!(!fits_published_pattern("0 9 * * MON-FRI"));
    }
}
