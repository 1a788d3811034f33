//! A `schedule`, judged and timed the way the platform will run it.
//!
//! Northflank refuses a schedule its published pattern does not find in it
//! (a 400 at apply time), and runs the rest as Kubernetes CronJobs, which
//! refuse anything containing `TZ` and parse and step schedules with
//! robfig/cron v3's standard parser. So a schedule is valid when all three
//! agree ([`judge`]), and its next runs are robfig's `Next`, step by step
//! ([`Schedule::next_runs`]):
//!
//! - five fields split on any Unicode whitespace (Go's `strings.Fields`),
//!   or a descriptor: `@yearly`, `@annually`, `@monthly`, `@weekly`,
//!   `@daily`, `@midnight`, `@hourly`, `@every <Go duration>`;
//! - in each field, comma-separated items (empty items are dropped), each
//!   `*` or `?`, `N`, `N-M`, then optionally `/STEP`; `N/STEP` means
//!   `N-max/STEP`; numbers are Go `Atoi` (a leading `+` is fine), names
//!   (`jan`..`dec`, `sun`..`sat`) are case-insensitive;
//! - weekdays are 0-6 (`7` is refused);
//! - an item that starts with `*` or `?` and has no step above 1 marks its
//!   field "starred"; when the day-of-month or the weekday field is
//!   starred, a day must match both, otherwise either;
//! - each run is searched for at most until the end of the fifth calendar
//!   year after the previous one; all times are UTC.
//!
//! A crate was not used: none of the Rust cron crates reproduces robfig's
//! star rule, its `N/STEP` reading, its descriptors and Go's duration
//! syntax together, and each of those changes verdicts or run times.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::diagnostic::Code;

/// The pattern of the reference page, with its `\d` written `[0-9]` (as
/// ECMAScript reads `\d`). The API applies it unanchored, as JSON Schema and
/// Joi do: a schedule passes when the pattern is found anywhere in it.
pub const API_PATTERN: &str = r"(@(annually|yearly|monthly|weekly|daily|hourly))|(((([0-9]+,)+[0-9]+|([0-9]+(\/|-)[0-9]+)|[0-9]+|\*) ?){5})";

static API: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(API_PATTERN).expect("the API's schedule pattern compiles"));

/// Whether the API's pattern finds a match in `schedule`.
pub fn fits_api_pattern(schedule: &str) -> bool {
    API.is_match(schedule)
}

/// robfig's "a star was written" bit, kept above every value bit.
const STAR: u64 = 1 << 63;

struct Bounds {
    name: &'static str,
    min: u64,
    max: u64,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Bounds = Bounds {
    name: "day",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const WEEKDAY: Bounds = Bounds {
    name: "weekday",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};
const FIELDS: [&Bounds; 5] = [&MINUTE, &HOUR, &DAY, &MONTH, &WEEKDAY];

/// A schedule Kubernetes accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(Rule);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Minute, hour, day of month, month, weekday: one bit per value, plus
    /// [`STAR`]. Seconds are always 0.
    Spec([u64; 5]),
    /// `@every`: a fixed delay in whole seconds (at least 1).
    Every(i64),
}

/// Why Kubernetes refuses a schedule, naming the field when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(pub String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CronError {}

/// What the platform says about a schedule: valid (with what it means), or
/// each reason it is refused.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Present only when the schedule is valid.
    pub schedule: Option<Schedule>,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The API's pattern does not match; `rewrite` is a digits-only way to
    /// write the same schedule that it does match, when there is one.
    Pattern { rewrite: Option<String> },
    /// Kubernetes refuses it.
    Cron(CronError),
}

impl Problem {
    pub fn code(&self) -> Code {
        match self {
            Problem::Pattern { .. } => Code::Pattern,
            Problem::Cron(_) => Code::Cron,
        }
    }

    /// The message; `show_rewrite` is false when the schedule must not be
    /// quoted (it came from the environment).
    pub fn message(&self, show_rewrite: bool) -> String {
        match self {
            Problem::Pattern {
                rewrite: Some(rewrite),
            } if show_rewrite => format!(
                "the API's `schedule` pattern does not match this and the API would refuse it; \
                 write it as `{rewrite}` (the same run times)"
            ),
            Problem::Pattern { .. } => "the API's `schedule` pattern does not match this and the API would refuse it: \
                 it takes 5 fields, each digits, `*`, `a-b`, `a/b` or `a,b,c` (no names such as MON), \
                 or one of @annually, @yearly, @monthly, @weekly, @daily, @hourly"
                .to_string(),
            Problem::Cron(e) => e.0.clone(),
        }
    }
}

/// The longest `@every`: five years of 365.25 days, the span robfig/cron
/// searches for a schedule's next run. A longer delay is refused, so that
/// every valid schedule has run times to show.
pub const MAX_EVERY_SECONDS: i64 = 5 * 36_525 * 864;

/// The verdict on `schedule`: valid when the API's pattern finds a match in
/// it, Kubernetes' parser accepts it and it holds no `TZ`.
pub fn judge(schedule: &str) -> Verdict {
    let parsed = parse(schedule);
    let mut problems = Vec::new();
    if !fits_api_pattern(schedule) {
        let rewrite = parsed.as_ref().ok().and_then(Schedule::rewrite);
        problems.push(Problem::Pattern { rewrite });
    }
    let schedule = match parsed {
        Ok(s) => Some(s).filter(|_| problems.is_empty()),
        Err(e) => {
            problems.push(Problem::Cron(e));
            None
        }
    };
    Verdict { schedule, problems }
}

/// Parses `schedule` as Kubernetes does: refused when it contains `TZ`,
/// then robfig/cron v3's `ParseStandard`. (The API's pattern is separate:
/// [`judge`] applies both.)
pub fn parse(schedule: &str) -> Result<Schedule, CronError> {
    if schedule.contains("TZ") {
        return Err(CronError(
            "Kubernetes refuses a schedule containing `TZ` (no CRON_TZ= or TZ= time zones): \
             schedules run in UTC"
                .into(),
        ));
    }
    if schedule.is_empty() {
        return Err(CronError("the schedule is empty".into()));
    }
    if schedule.starts_with('@') {
        return descriptor(schedule);
    }
    let parts: Vec<&str> = schedule.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(CronError(format!(
            "expected 5 fields (minute hour day month weekday), found {}",
            parts.len()
        )));
    }
    let mut fields = [0u64; 5];
    for (slot, (text, bounds)) in fields.iter_mut().zip(parts.iter().zip(FIELDS)) {
        *slot = field(text, bounds)?;
    }
    Ok(Schedule(Rule::Spec(fields)))
}

fn all(bounds: &Bounds) -> u64 {
    bits(bounds.min, bounds.max, 1) | STAR
}

fn descriptor(text: &str) -> Result<Schedule, CronError> {
    // Minute 0, then hour, day, month, weekday, as robfig's parseDescriptor.
    let spec = |hour: u64, day: u64, month: u64, weekday: u64| {
        Ok(Schedule(Rule::Spec([1, hour, day, month, weekday])))
    };
    let (every_day, every_month, every_weekday) = (all(&DAY), all(&MONTH), all(&WEEKDAY));
    match text {
        "@yearly" | "@annually" => return spec(1, 1 << 1, 1 << 1, every_weekday),
        "@monthly" => return spec(1, 1 << 1, every_month, every_weekday),
        "@weekly" => return spec(1, every_day, every_month, 1),
        "@daily" | "@midnight" => return spec(1, every_day, every_month, every_weekday),
        "@hourly" => return spec(all(&HOUR), every_day, every_month, every_weekday),
        _ => {}
    }
    if let Some(duration) = text.strip_prefix("@every ") {
        let nanos = go_duration(duration).ok_or_else(|| {
            CronError(format!(
                "`@every {duration}`: `{duration}` is not a duration such as 90m or 1h30m"
            ))
        })?;
        // robfig's Every: at least a second, whole seconds.
        let seconds = nanos.max(1_000_000_000) / 1_000_000_000;
        if seconds > MAX_EVERY_SECONDS {
            return Err(CronError(format!(
                "`@every {duration}` is longer than five years ({}h), the horizon within which \
                 run times are looked for (Kubernetes' parser stops there too): it would never \
                 be seen to run",
                MAX_EVERY_SECONDS / 3600
            )));
        }
        return Ok(Schedule(Rule::Every(seconds)));
    }
    Err(CronError(format!(
        "`{text}` is not a descriptor Kubernetes knows: @yearly, @annually, @monthly, \
         @weekly, @daily, @midnight, @hourly or @every <duration>"
    )))
}

/// One field: comma-separated items, empty ones dropped (Go's
/// `strings.FieldsFunc`).
fn field(text: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let mut out = 0;
    for item in text.split(',').filter(|i| !i.is_empty()) {
        out |= item_bits(item, bounds)?;
    }
    Ok(out)
}

/// robfig's `getRange`: `*`/`?`/`N`/`N-M`, then optionally `/STEP`.
fn item_bits(item: &str, b: &Bounds) -> Result<u64, CronError> {
    let name = b.name;
    let err = |m: String| Err(CronError(m));
    let range_and_step: Vec<&str> = item.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end, mut extra) = if low_high[0] == "*" || low_high[0] == "?" {
        (b.min, b.max, STAR)
    } else {
        let start = value(low_high[0], item, b)?;
        let end = match low_high.len() {
            1 => start,
            2 => value(low_high[1], item, b)?,
            _ => return err(format!("{name} `{item}` has more than one `-`")),
        };
        (start, end, 0)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let text = range_and_step[1];
            let step = match go_atoi(text) {
                Some(n) if n < 0 => return err(format!("{name} step `{text}` is negative")),
                Some(n) => n as u64,
                None => return err(format!("{name} step `{text}` is not a number")),
            };
            // "N/step" means "N-max/step".
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return err(format!("{name} `{item}` has more than one `/`")),
    };
    if start < b.min {
        return err(format!("{name} {start} is outside {}-{}", b.min, b.max));
    }
    if end > b.max {
        let hint = if b.max == 6 && end == 7 {
            "; Kubernetes counts Sunday as 0 only"
        } else {
            ""
        };
        return err(format!("{name} {end} is outside {}-{}{hint}", b.min, b.max));
    }
    if start > end {
        return err(format!("{name} range {start}-{end} runs backwards"));
    }
    if step == 0 {
        return err(format!("{name} step must be at least 1"));
    }
    Ok(bits(start, end, step) | extra)
}

fn bits(start: u64, end: u64, step: u64) -> u64 {
    let mut out = 0;
    let mut v = start;
    while v <= end {
        out |= 1 << v;
        match v.checked_add(step) {
            Some(next) => v = next,
            None => break,
        }
    }
    out
}

/// A number or, in the month and weekday fields, a name.
fn value(text: &str, item: &str, b: &Bounds) -> Result<u64, CronError> {
    let lower = go_lower(text);
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        // Months are named from 1 (jan), weekdays from 0 (sun).
        return Ok(i as u64 + b.min);
    }
    let names = match b.names.first().zip(b.names.last()) {
        Some((first, last)) => format!(
            " or a name ({}-{})",
            first.to_uppercase(),
            last.to_uppercase()
        ),
        None => String::new(),
    };
    match go_atoi(text) {
        Some(n) if n < 0 => Err(CronError(format!("{} `{item}` is negative", b.name))),
        Some(n) => Ok(n as u64),
        None if text.is_empty() => Err(CronError(format!(
            "{} `{item}` is missing a number",
            b.name
        ))),
        None => Err(CronError(format!(
            "{} `{text}` is not a number in {}-{}{names}",
            b.name, b.min, b.max
        ))),
    }
}

/// Go's `strconv.Atoi`: an optional sign, then decimal digits, within i64.
fn go_atoi(text: &str) -> Option<i64> {
    text.parse().ok()
}

/// Go's `strings.ToLower` as far as it can make one of the ASCII names:
/// the only non-ASCII letters whose lower case is ASCII are U+0130 (to `i`)
/// and the Kelvin sign (to `k`).
fn go_lower(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{130}' => 'i',
            '\u{212a}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Go's `time.ParseDuration`, in nanoseconds.
fn go_duration(orig: &str) -> Option<i64> {
    const LIMIT: u64 = 1 << 63;
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = &s[1..];
        }
    }
    if s == b"0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return None;
        }
        let before = s.len();
        let (mut v, rest) = leading_int(s)?;
        s = rest;
        let pre = before != s.len();
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let (x, sc, rest) = leading_fraction(s);
            (f, scale, s) = (x, sc, rest);
            post = before != s.len();
        }
        if !pre && !post {
            return None;
        }
        let i = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if i == 0 {
            return None;
        }
        let unit: u64 = match &s[..i] {
            b"ns" => 1,
            // `µs` (U+00B5) and `μs` (U+03BC), as UTF-8.
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return None,
        };
        s = &s[i..];
        if v > LIMIT / unit {
            return None;
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return None;
            }
        }
        d = d.wrapping_add(v);
        if d > LIMIT {
            return None;
        }
    }
    if neg {
        return Some((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return None;
    }
    Some(d as i64)
}

fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > (1 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > 1 << 63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let (mut x, mut scale, mut overflow) = (0u64, 1f64, false);
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        let digit = u64::from(s[i] - b'0');
        i += 1;
        if overflow {
            continue;
        }
        if x > ((1 << 63) - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + digit;
        if y > 1 << 63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

impl Schedule {
    /// The next `n` run times strictly after `after`, each found from the
    /// one before (robfig's `Next`, repeated). Fewer when a run is not found
    /// within the five-year limit (`0 0 30 2 *` never runs).
    pub fn next_runs(&self, after: jiff::Timestamp, n: usize) -> Vec<jiff::Timestamp> {
        let mut runs = Vec::with_capacity(n.min(1024));
        let mut at = after;
        while runs.len() < n {
            match self.next(at) {
                Some(next) => {
                    runs.push(next);
                    at = next;
                }
                None => break,
            }
        }
        runs
    }

    /// robfig's `Next(t)`; `None` for its zero time (nothing within the
    /// limit) and past the end of the calendar jiff knows.
    pub fn next(&self, t: jiff::Timestamp) -> Option<jiff::Timestamp> {
        // Whole seconds, rounded down as Go's t.Nanosecond() is never negative.
        let floor = t.as_second() - i64::from(t.subsec_nanosecond() < 0);
        match self.0 {
            Rule::Every(delay) => jiff::Timestamp::from_second(floor.checked_add(delay)?).ok(),
            Rule::Spec(fields) => next_spec(&fields, floor.checked_add(1)?),
        }
    }

    /// The same schedule written so that the API's pattern matches it:
    /// digits only, `*` where robfig saw a star that matters. `None` for
    /// `@every` and for fields that allow nothing.
    pub fn rewrite(&self) -> Option<String> {
        let Rule::Spec(fields) = self.0 else {
            return None;
        };
        let mut parts = Vec::with_capacity(5);
        for (i, (&f, b)) in fields.iter().zip(FIELDS).enumerate() {
            let day_field = i == 2 || i == 4;
            let star = if day_field {
                f & STAR != 0
            } else {
                f & !STAR == bits(b.min, b.max, 1)
            };
            parts.push(if star {
                "*".to_string()
            } else {
                write_field(f & !STAR)?
            });
        }
        let text = parts.join(" ");
        let same = parse(&text).ok().is_some_and(|s| s.same_runs(self));
        (fits_api_pattern(&text) && same).then_some(text)
    }

    /// Whether two schedules run at the same times: the same values in every
    /// field, and the same day rule (both fields must match, or either).
    fn same_runs(&self, other: &Schedule) -> bool {
        match (self.0, other.0) {
            (Rule::Spec(a), Rule::Spec(b)) => {
                let both = |f: &[u64; 5]| (f[2] | f[4]) & STAR != 0;
                a.iter().zip(b.iter()).all(|(x, y)| x & !STAR == y & !STAR) && both(&a) == both(&b)
            }
            (a, b) => a == b,
        }
    }
}

/// `5`, `1-5` or `0,6,12,18`.
fn write_field(f: u64) -> Option<String> {
    let values: Vec<u32> = (0..63).filter(|v| f & (1 << v) != 0).collect();
    let (&first, &last) = (values.first()?, values.last()?);
    Some(if values.len() == 1 {
        first.to_string()
    } else if (last - first) as usize + 1 == values.len() {
        format!("{first}-{last}")
    } else {
        values
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The first time at or after `start` (Unix seconds) that `fields` allow,
/// searching no further than the end of the fifth year after `start`'s.
fn next_spec(fields: &[u64; 5], start: i64) -> Option<jiff::Timestamp> {
    let utc = jiff::tz::TimeZone::UTC;
    let start = jiff::Timestamp::from_second(start).ok()?.to_zoned(utc);
    let limit = start.year().checked_add(5)?;
    // Seconds are always 0: the first candidate is the next whole minute.
    let mut at = start.datetime();
    if at.second() != 0 {
        at = at
            .with()
            .second(0)
            .build()
            .ok()?
            .checked_add(jiff::Span::new().minutes(1))
            .ok()?;
    }
    let [minutes, hours, days, months, weekdays] = *fields;
    let both = (days | weekdays) & STAR != 0;
    let mut date = at.date();
    let (mut from_hour, mut from_minute) = (at.hour() as u32, at.minute() as u32);
    while date.year() <= limit {
        if months & (1 << date.month()) == 0 {
            // The first of the next month.
            date = date
                .first_of_month()
                .checked_add(jiff::Span::new().months(1))
                .ok()?;
            (from_hour, from_minute) = (0, 0);
            continue;
        }
        let day = days & (1 << date.day()) != 0;
        let weekday = weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if (both && day && weekday) || (!both && (day || weekday)) {
            for hour in from_hour..24 {
                if hours & (1 << hour) == 0 {
                    continue;
                }
                let from = if hour == from_hour { from_minute } else { 0 };
                let left = minutes & !STAR & (u64::MAX << from) & ((1 << 60) - 1);
                if left != 0 {
                    let minute = left.trailing_zeros();
                    let found = date.at(hour as i8, minute as i8, 0, 0);
                    return found
                        .to_zoned(jiff::tz::TimeZone::UTC)
                        .ok()
                        .map(|z| z.timestamp());
                }
            }
        }
        date = date.tomorrow().ok()?;
        (from_hour, from_minute) = (0, 0);
    }
    None
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
        assert_eq!(
            err("0 0 * * 7"),
            "weekday 7 is outside 0-6; Kubernetes counts Sunday as 0 only"
        );
        assert_eq!(
            err("0 0 * * FOO"),
            "weekday `FOO` is not a number in 0-6 or a name (SUN-SAT)"
        );
        assert_eq!(
            err("0 0 * *"),
            "expected 5 fields (minute hour day month weekday), found 4"
        );
        assert_eq!(err("*/0 * * * *"), "minute step must be at least 1");
        assert_eq!(err("*/-12 * * * *"), "minute step `-12` is negative");
        assert_eq!(err("5-1 * * * *"), "minute range 5-1 runs backwards");
        assert_eq!(err("5--5 * * * *"), "minute `5--5` has more than one `-`");
        assert_eq!(err("*//2 * * * *"), "minute `*//2` has more than one `/`");
        assert_eq!(err("-1 * * * *"), "minute `-1` is missing a number");
        assert!(err("@DAILY").contains("not a descriptor Kubernetes knows"));
        assert!(err("@every Xm").contains("not a duration"));
        assert!(err("CRON_TZ=UTC 0 0 * * *").contains("`TZ`"));
        assert_eq!(err(""), "the schedule is empty");
    }

    #[test]
    fn reads_what_robfig_reads() {
        for ok in [
            "?/2 * * * *",
            "*-5 * * * *",
            "1,,2 * * * *",
            ",5 * * * *",
            "+5 * * * *",
            "*/+5 * * * *",
            "0 0 1 jAn *",
            "0 9 * * MON-5",
            " 0 3 * * *\n",
            "0\t3\t*\t*\t*",
            "0 9 * * FR\u{130}",
            "@midnight",
            "@every 1h30m",
            "@every 1.5h",
            "@every 10000s",
        ] {
            assert!(parse(ok).is_ok(), "{ok:?}");
        }
        for refused in [
            "0 0 1 January *",
            "0 0 1 DEC-JAN *",
            "@daily ",
            "0 0 * * 1-",
            "0x1 * * * *",
            "1.5 * * * *",
            "99999999999999999999 * * * *",
            "@every 1",
            "@every 1h 2m",
        ] {
            assert!(parse(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration(".5s"), Some(500_000_000));
        assert_eq!(go_duration("-2m"), Some(-120_000_000_000));
        assert_eq!(go_duration("0"), Some(0));
        assert_eq!(go_duration("3\u{b5}s"), Some(3_000));
        assert_eq!(go_duration("9223372036s"), Some(9_223_372_036_000_000_000));
        for bad in ["", "1", "s", ".s", "1x", "1h ", "9223372037s"] {
            assert_eq!(go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn next_runs_in_utc() {
        // (schedule, after, the next runs): as many are asked for as given.
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "*/15 * * * *",
                "2026-11-28T16:07:30Z",
                &[
                    "2026-11-28T16:15:00Z",
                    "2026-11-28T16:30:00Z",
                    "2026-11-28T16:45:00Z",
                ],
            ),
            // Strictly after: a run exactly now is not next; half a second
            // before one, it is.
            (
                "0 16 * * *",
                "2026-11-28T16:00:00Z",
                &["2026-11-29T16:00:00Z"],
            ),
            (
                "0 16 * * *",
                "2026-11-28T15:59:59.5Z",
                &["2026-11-28T16:00:00Z"],
            ),
            // Weekday steps run over 0-6: no Sunday from `1/2`.
            (
                "0 0 * * 1/2",
                "2026-11-28T16:07:30Z",
                &[
                    "2026-11-30T00:00:00Z",
                    "2026-12-02T00:00:00Z",
                    "2026-12-04T00:00:00Z",
                ],
            ),
            // `*/1` keeps the star: Mondays only.
            (
                "0 0 */1 * MON",
                "2026-11-28T00:00:00Z",
                &["2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z"],
            ),
            // Neither starred: either day matches.
            (
                "0 0 1 * MON",
                "2026-11-28T00:00:00Z",
                &[
                    "2026-11-30T00:00:00Z",
                    "2026-12-01T00:00:00Z",
                    "2026-12-07T00:00:00Z",
                ],
            ),
            // The five-year limit applies per run.
            (
                "0 0 29 2 *",
                "2026-11-28T00:00:00Z",
                &[
                    "2028-02-29T00:00:00Z",
                    "2032-02-29T00:00:00Z",
                    "2036-02-29T00:00:00Z",
                ],
            ),
            (
                "@every 90m",
                "2026-11-28T16:07:30.25Z",
                &["2026-11-28T17:37:30Z", "2026-11-28T19:07:30Z"],
            ),
        ];
        for (schedule, after, expected) in cases {
            let at: jiff::Timestamp = after.parse().expect("timestamp");
            let runs: Vec<String> = parse(schedule)
                .expect("valid")
                .next_runs(at, expected.len())
                .iter()
                .map(|t| t.to_string())
                .collect();
            assert_eq!(runs, *expected, "{schedule} after {after}");
        }
        // Never within five years: none.
        let after = "2026-11-28T00:00:00Z".parse().expect("timestamp");
        assert!(parse("0 0 30 2 *")
            .expect("valid")
            .next_runs(after, 1)
            .is_empty());
    }

    #[test]
    fn verdicts_name_both_reasons() {
        let v = judge("0 */6 * * *");
        assert!(v.schedule.is_none());
        assert_eq!(
            v.problems,
            [Problem::Pattern {
                rewrite: Some("0 0,6,12,18 * * *".into())
            }]
        );
        let v = judge("0 0 * * 7");
        assert!(matches!(v.problems.as_slice(), [Problem::Cron(_)]));
        let v = judge("0 0 * * SAT-SUN");
        assert_eq!(v.problems.len(), 2);
        assert!(judge("0 3 * * *").schedule.is_some());
        assert!(judge("CRON_TZ=UTC 0 0 * * *").schedule.is_none());
    }

    #[test]
    fn rewrites_keep_the_day_rule() {
        let rewrite = |s: &str| parse(s).expect(s).rewrite();
        assert_eq!(rewrite("0 0 */1 * MON").as_deref(), Some("0 0 * * 1"));
        assert_eq!(
            rewrite("30 6 */7 * 1").as_deref(),
            Some("30 6 1,8,15,22,29 * 1")
        );
        assert_eq!(rewrite("0 0 1-31 * MON").as_deref(), Some("0 0 1-31 * 1"));
        assert_eq!(rewrite("0 9 * * MON-FRI").as_deref(), Some("0 9 * * 1-5"));
        assert_eq!(rewrite("@midnight").as_deref(), Some("0 0 * * *"));
        assert_eq!(rewrite("0  3 * * *").as_deref(), Some("0 3 * * *"));
        assert_eq!(rewrite("@every 1h"), None);
        assert_eq!(rewrite(", * * * *"), None);
    }

    #[test]
    fn api_pattern_is_a_search() {
        assert!(fits_api_pattern("0 3 * * *"));
        assert!(fits_api_pattern("*/15 * * * *"));
        assert!(fits_api_pattern("@hourly"));
        assert!(fits_api_pattern("@daily "));
        assert!(!fits_api_pattern("0 */2 * * *"));
        assert!(!fits_api_pattern("0 9 * * MON-FRI"));
    }

    /// The search agrees with a plain minute-by-minute scan of robfig's
    /// matching rule, on random schedules.
    mod against_a_minute_scan {
        use super::*;
        use proptest::prelude::*;

        fn matches(f: &[u64; 5], t: jiff::civil::DateTime) -> bool {
            let bit = |field: u64, v: i8| field & (1 << v) != 0;
            let (day, weekday) = (
                bit(f[2], t.day()),
                bit(f[4], t.weekday().to_sunday_zero_offset()),
            );
            let days = if (f[2] | f[4]) & STAR != 0 {
                day && weekday
            } else {
                day || weekday
            };
            bit(f[0], t.minute()) && bit(f[1], t.hour()) && bit(f[3], t.month()) && days
        }

        fn item(max: u32, min: u32) -> impl Strategy<Value = String> {
            prop_oneof![
                Just("*".to_string()),
                Just("?".to_string()),
                (min..=max).prop_map(|n| n.to_string()),
                (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
                (min..=max, 1..=max.max(2)).prop_map(|(a, s)| format!("{a}/{s}")),
                (1..=max.max(2)).prop_map(|s| format!("*/{s}")),
            ]
        }

        fn field(min: u32, max: u32) -> impl Strategy<Value = String> {
            prop::collection::vec(item(max, min), 1..3).prop_map(|v| v.join(","))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 200, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6b38_7331), failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn next_is_the_first_matching_minute(
                minute in field(0, 59),
                hour in field(0, 23),
                day in field(1, 31),
                month in prop_oneof![Just("*".to_string()), field(1, 12)],
                weekday in field(0, 6),
                start in 0i64..(3 * 365 * 86_400),
            ) {
                let text = format!("{minute} {hour} {day} {month} {weekday}");
                let schedule = parse(&text).expect("generated schedules parse");
                let Rule::Spec(f) = schedule.0 else { unreachable!() };
                let after = jiff::Timestamp::from_second(1_780_000_000 + start).expect("time");
                let ours = schedule.next(after);
                // Scan up to 40 days, minute by minute.
                let mut t = after.to_zoned(jiff::tz::TimeZone::UTC).datetime();
                t = t.with().second(0).build().expect("minute");
                let mut scanned = None;
                for _ in 0..(40 * 24 * 60) {
                    t = t.checked_add(jiff::Span::new().minutes(1)).expect("next minute");
                    if matches(&f, t) {
                        scanned = Some(t.to_zoned(jiff::tz::TimeZone::UTC).expect("utc").timestamp());
                        break;
                    }
                }
                match scanned {
                    Some(s) => prop_assert_eq!(ours, Some(s), "{}", text),
                    None => prop_assert!(
                        ours.is_none_or(|o| o.as_second() - after.as_second() > 40 * 86_400 - 60),
                        "{} found {:?} that the scan missed", text, ours
                    ),
                }
            }
        }
    }
}
