//! Service-level targets: the `[sla]` section of `crossdesk.toml` ([`SlaSettings`]), the due
//! times it gives a ticket ([`SlaPolicies`]), counted in business minutes across nights,
//! weekends, holidays and daylight-saving changes, and where a ticket's clock stands
//! ([`SlaState`]).
//!
//! Pure: no store, no clock. The [`crate::sla_watch::SlaWatch`] raises breaches.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::model::{ChannelKind, Visibility};
use crate::workflow::{Priority, SlaClock};

/// The longest target accepted, in minutes (365 days).
pub const MAX_TARGET_MINUTES: u32 = 365 * 24 * 60;

/// How far ahead a due time is searched for open hours (guards against a calendar that is
/// never open; [`SlaSettings::validate`] refuses one).
const MAX_SEARCH_DAYS: u32 = 366 * 50;

/// The days of the week, Monday first.
const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// The `[sla]` section of `crossdesk.toml`: business hours, targets and the warning window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlaSettings {
    /// When the support team works; targets count only these minutes.
    pub business_hours: BusinessHours,
    /// First-response targets by kind of conversation and priority, in business minutes.
    pub first_response: FirstResponseTargets,
    /// Resolution targets by priority, in business minutes, for every channel.
    pub resolution: PriorityTargets,
    /// How many minutes before its due time a ticket counts as nearing its breach.
    pub warn_before_minutes: u32,
}

impl Default for SlaSettings {
    fn default() -> Self {
        SlaSettings {
            business_hours: BusinessHours::default(),
            first_response: FirstResponseTargets::default(),
            // 1, 2, 5 and 10 business days of 8 hours.
            resolution: PriorityTargets::new(4_800, 2_400, 960, 480),
            warn_before_minutes: 15,
        }
    }
}

impl SlaSettings {
    /// Checks what the types alone cannot: every target is 1 to [`MAX_TARGET_MINUTES`]
    /// minutes, and the business hours are open at some time of the week.
    pub fn validate(&self) -> Result<(), SlaSettingsError> {
        let classes = [
            ("public", &self.first_response.public),
            ("direct", &self.first_response.direct),
            ("chat", &self.first_response.chat),
            ("email", &self.first_response.email),
        ];
        let fields = classes
            .into_iter()
            .map(|(name, t)| (format!("sla.first_response.{name}"), t))
            .chain([("sla.resolution".to_string(), &self.resolution)]);
        for (prefix, targets) in fields {
            for priority in Priority::ALL {
                let minutes = targets.get(priority);
                if minutes == 0 || minutes > MAX_TARGET_MINUTES {
                    return Err(SlaSettingsError::Target {
                        field: format!("{prefix}.{priority}"),
                        minutes,
                    });
                }
            }
        }
        if self.warn_before_minutes > MAX_TARGET_MINUTES {
            return Err(SlaSettingsError::Warn(self.warn_before_minutes));
        }
        let hours = &self.business_hours;
        if !hours.always_open && WEEK.iter().all(|d| hours.day(*d).is_closed()) {
            return Err(SlaSettingsError::NeverOpen);
        }
        Ok(())
    }
}

/// Why SLA settings cannot be used.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SlaSettingsError {
    /// A target is zero or too long.
    #[error("{field} is {minutes} minutes: a target must be 1 to {MAX_TARGET_MINUTES} minutes")]
    Target {
        /// The setting (`sla.first_response.chat.urgent`).
        field: String,
        /// Its value.
        minutes: u32,
    },
    /// The warning window is too long.
    #[error("sla.warn_before_minutes is {0}: at most {MAX_TARGET_MINUTES} minutes")]
    Warn(u32),
    /// No day of the week has open hours and `always_open` is off: nothing would ever be due.
    #[error(
        "sla.business_hours has no open hours on any weekday: open some day or set always_open = true"
    )]
    NeverOpen,
}

/// When the support team works (`[sla.business_hours]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusinessHours {
    /// Count every minute of every day (24/7 support): the rest of the section is ignored.
    pub always_open: bool,
    /// The IANA time zone the hours and holidays are in (`Europe/Berlin`, `UTC`).
    pub time_zone: TimeZoneName,
    /// Monday's hours.
    pub monday: DayHours,
    /// Tuesday's hours.
    pub tuesday: DayHours,
    /// Wednesday's hours.
    pub wednesday: DayHours,
    /// Thursday's hours.
    pub thursday: DayHours,
    /// Friday's hours.
    pub friday: DayHours,
    /// Saturday's hours.
    pub saturday: DayHours,
    /// Sunday's hours.
    pub sunday: DayHours,
    /// Days the team does not work, in the time zone: a date (`2026-12-24`) or a day every
    /// year (`12-25`).
    pub holidays: Vec<Holiday>,
}

impl Default for BusinessHours {
    /// Monday to Friday, 09:00 to 17:00 UTC, no holidays.
    fn default() -> Self {
        let office = DayHours::from_ranges(&[(9 * 60, 17 * 60)]);
        BusinessHours {
            always_open: false,
            time_zone: TimeZoneName::default(),
            monday: office.clone(),
            tuesday: office.clone(),
            wednesday: office.clone(),
            thursday: office.clone(),
            friday: office,
            saturday: DayHours::closed(),
            sunday: DayHours::closed(),
            holidays: Vec::new(),
        }
    }
}

impl BusinessHours {
    /// Round the clock, every day.
    pub fn always() -> Self {
        BusinessHours {
            always_open: true,
            ..BusinessHours::default()
        }
    }

    /// The hours of a weekday.
    pub fn day(&self, day: Weekday) -> &DayHours {
        match day {
            Weekday::Mon => &self.monday,
            Weekday::Tue => &self.tuesday,
            Weekday::Wed => &self.wednesday,
            Weekday::Thu => &self.thursday,
            Weekday::Fri => &self.friday,
            Weekday::Sat => &self.saturday,
            Weekday::Sun => &self.sunday,
        }
    }

    /// Whether a local date is a holiday.
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.iter().any(|h| h.matches(date))
    }

    /// Whether the team works at this instant.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        if self.always_open {
            return true;
        }
        let tz = self.time_zone.0;
        let date = at.with_timezone(&tz).date_naive();
        // A range of the previous day never reaches past its midnight, so today's suffice.
        !self.is_holiday(date)
            && self
                .open_ranges(date)
                .any(|(open, close)| open <= at && at < close)
    }

    /// The instant `minutes` business minutes after `start`: open minutes only, in the time
    /// zone's local time (a day on which clocks change has its real length). Starting outside
    /// business hours counts from the next opening.
    pub fn add_business_minutes(&self, start: DateTime<Utc>, minutes: u32) -> DateTime<Utc> {
        let mut remaining = Duration::minutes(i64::from(minutes));
        if self.always_open || minutes == 0 {
            return start + remaining;
        }
        let tz = self.time_zone.0;
        let mut date = start.with_timezone(&tz).date_naive();
        for _ in 0..MAX_SEARCH_DAYS {
            if !self.is_holiday(date) {
                for (open, close) in self.open_ranges(date) {
                    let open = open.max(start);
                    if close <= open {
                        continue;
                    }
                    let available = close - open;
                    if remaining <= available {
                        return open + remaining;
                    }
                    remaining -= available;
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        // Unreachable with validated settings (some weekday is open).
        start + Duration::minutes(i64::from(minutes))
    }

    /// A local date's open ranges as instants (holidays not considered).
    fn open_ranges(
        &self,
        date: NaiveDate,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let tz = self.time_zone.0;
        self.day(date.weekday()).ranges.iter().map(move |&(a, b)| {
            (
                local_instant(tz, date, a, false),
                local_instant(tz, date, b, true),
            )
        })
    }
}

/// The instant of `minute` (0 to 1440) of a local date. A time that occurs twice (clocks go
/// back) is its earlier occurrence for an opening and its later for a closing, so the hour
/// counts twice; a time that does not occur (clocks go forward) is the end of the gap.
fn local_instant(tz: Tz, date: NaiveDate, minute: u16, latest: bool) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let mut local = midnight + Duration::minutes(i64::from(minute));
    // No zone skips more than a day; step through a gap minute by minute.
    for _ in 0..=24 * 60 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(early, late) => {
                return if latest { late } else { early }.with_timezone(&Utc)
            }
            LocalResult::None => local += Duration::minutes(1),
        }
    }
    local.and_utc()
}

/// An IANA time zone name, checked against the time zone database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZoneName(pub Tz);

impl Default for TimeZoneName {
    /// `UTC`.
    fn default() -> Self {
        TimeZoneName(Tz::UTC)
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl FromStr for TimeZoneName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse::<Tz>().map(TimeZoneName).map_err(|_| {
            format!("`{s}` is not an IANA time zone name (such as `Europe/Berlin` or `UTC`)")
        })
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(de::Error::custom)
    }
}

/// One day's open hours: `"09:00-17:00"`, several ranges (`"08:00-12:00, 13:00-17:00"`),
/// `"00:00-24:00"` for the whole day, or `"closed"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayHours {
    /// Sorted, non-overlapping `[open, close)` ranges in minutes after local midnight.
    ranges: Vec<(u16, u16)>,
}

impl DayHours {
    /// A closed day.
    pub fn closed() -> Self {
        DayHours::default()
    }

    /// Whether the day has no open hours.
    pub fn is_closed(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The open ranges in minutes after local midnight (`close` at most 1440).
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }

    /// Ranges already known to be valid.
    fn from_ranges(ranges: &[(u16, u16)]) -> Self {
        DayHours {
            ranges: ranges.to_vec(),
        }
    }
}

impl FromStr for DayHours {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text.eq_ignore_ascii_case("closed") || text.is_empty() {
            return Ok(DayHours::closed());
        }
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let bad = || {
                if text.contains(',') {
                    format!(
                        "`{}` in `{s}` is not a range like `09:00-17:00`",
                        part.trim()
                    )
                } else {
                    format!("`{s}` is not a range like `09:00-17:00` (or `closed`)")
                }
            };
            let (a, b) = part.trim().split_once('-').ok_or_else(bad)?;
            let open = clock_minute(a).ok_or_else(bad)?;
            let close = clock_minute(b).ok_or_else(bad)?;
            if open >= close {
                return Err(format!(
                    "`{}` in `{s}` closes before it opens (a day ends at 24:00)",
                    part.trim()
                ));
            }
            ranges.push((open, close));
        }
        ranges.sort_unstable();
        if ranges.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err(format!("the ranges of `{s}` overlap"));
        }
        Ok(DayHours { ranges })
    }
}

/// `HH:MM` (00:00 to 24:00) as minutes after midnight.
fn clock_minute(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let minute = h.checked_mul(60)? + m;
    (m < 60 && minute <= 24 * 60).then_some(minute)
}

impl fmt::Display for DayHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ranges.is_empty() {
            return f.write_str("closed");
        }
        for (i, (a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60)?;
        }
        Ok(())
    }
}

impl Serialize for DayHours {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DayHours {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A day off: one date, or a month and day every year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holiday {
    /// That date only (`2026-12-24`).
    Date(NaiveDate),
    /// That day every year (`12-25`).
    Annual {
        /// 1 to 12.
        month: u32,
        /// 1 to 31.
        day: u32,
    },
}

impl Holiday {
    /// Whether the holiday falls on `date`.
    pub fn matches(&self, date: NaiveDate) -> bool {
        match *self {
            Holiday::Date(d) => d == date,
            Holiday::Annual { month, day } => date.month() == month && date.day() == day,
        }
    }
}

impl FromStr for Holiday {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(Holiday::Date(date));
        }
        let annual = text.split_once('-').and_then(|(m, d)| {
            let (month, day): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
            // 2024 is a leap year: 02-29 is a valid annual holiday.
            NaiveDate::from_ymd_opt(2024, month, day).map(|_| Holiday::Annual { month, day })
        });
        annual.ok_or_else(|| {
            format!("`{s}` is neither a date (`2026-12-24`) nor a day every year (`12-25`)")
        })
    }
}

impl fmt::Display for Holiday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holiday::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Holiday::Annual { month, day } => write!(f, "{month:02}-{day:02}"),
        }
    }
}

impl Serialize for Holiday {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Holiday {
    /// From a string, or from a TOML date written bare (`2026-12-24`), which TOML parsers
    /// hand over as a one-entry map.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HolidayVisitor;
        impl<'de> Visitor<'de> for HolidayVisitor {
            type Value = Holiday;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date (2026-12-24) or a day every year (\"12-25\")")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Holiday, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Holiday, A::Error> {
                let (_, value): (String, String) = map
                    .next_entry()?
                    .ok_or_else(|| de::Error::custom("an empty table is not a date"))?;
                value.parse().map_err(de::Error::custom)
            }
        }
        d.deserialize_any(HolidayVisitor)
    }
}

/// A target in minutes for each priority. Every priority must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityTargets {
    /// Low priority.
    pub low: u32,
    /// Normal priority (the default).
    pub normal: u32,
    /// High priority.
    pub high: u32,
    /// Urgent priority.
    pub urgent: u32,
}

impl PriorityTargets {
    /// Targets from the lowest priority to the most urgent.
    pub const fn new(low: u32, normal: u32, high: u32, urgent: u32) -> Self {
        PriorityTargets {
            low,
            normal,
            high,
            urgent,
        }
    }

    /// The target of a priority, in minutes.
    pub fn get(&self, priority: Priority) -> u32 {
        match priority {
            Priority::Low => self.low,
            Priority::Normal => self.normal,
            Priority::High => self.high,
            Priority::Urgent => self.urgent,
        }
    }
}

/// First-response targets (`[sla.first_response]`), in business minutes, by the kind of
/// conversation a ticket starts with ([`SlaClass`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirstResponseTargets {
    /// Public messages everyone sees: page and Instagram comments, mentions on X.
    pub public: PriorityTargets,
    /// Direct messages: Messenger, Instagram Direct, X direct messages.
    pub direct: PriorityTargets,
    /// The website live chat.
    pub chat: PriorityTargets,
    /// Email.
    pub email: PriorityTargets,
}

impl Default for FirstResponseTargets {
    fn default() -> Self {
        FirstResponseTargets {
            public: PriorityTargets::new(120, 60, 30, 15),
            direct: PriorityTargets::new(480, 240, 120, 60),
            chat: PriorityTargets::new(10, 5, 3, 2),
            email: PriorityTargets::new(960, 480, 240, 120),
        }
    }
}

impl FirstResponseTargets {
    /// The targets of a class.
    pub fn of(&self, class: SlaClass) -> &PriorityTargets {
        match class {
            SlaClass::Public => &self.public,
            SlaClass::Direct => &self.direct,
            SlaClass::Chat => &self.chat,
            SlaClass::Email => &self.email,
        }
    }
}

/// The kind of conversation that sets a first-response target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaClass {
    /// Anything public (comments, mentions), on any channel.
    Public,
    /// Private messages on Facebook, Instagram or X.
    Direct,
    /// The website chat.
    Chat,
    /// Email.
    Email,
}

impl SlaClass {
    /// The class of a message: a public one is [`SlaClass::Public`] whatever its channel.
    pub fn of(channel: ChannelKind, visibility: Visibility) -> Self {
        match (visibility, channel) {
            (Visibility::Public, _) => SlaClass::Public,
            (Visibility::Private, ChannelKind::Chat) => SlaClass::Chat,
            (Visibility::Private, ChannelKind::Email) => SlaClass::Email,
            (
                Visibility::Private,
                ChannelKind::Facebook | ChannelKind::Instagram | ChannelKind::Twitter,
            ) => SlaClass::Direct,
        }
    }

    /// The class's name (`public`, `direct`, `chat`, `email`).
    pub fn as_str(self) -> &'static str {
        match self {
            SlaClass::Public => "public",
            SlaClass::Direct => "direct",
            SlaClass::Chat => "chat",
            SlaClass::Email => "email",
        }
    }
}

impl fmt::Display for SlaClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Validated SLA settings, ready to give tickets their due times (the default: the default
/// settings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaPolicies {
    settings: SlaSettings,
}

impl SlaPolicies {
    /// The policies of validated settings.
    pub fn new(settings: SlaSettings) -> Result<Self, SlaSettingsError> {
        settings.validate()?;
        Ok(SlaPolicies { settings })
    }

    /// The settings.
    pub fn settings(&self) -> &SlaSettings {
        &self.settings
    }

    /// The policy name and due time of the first response to a conversation that started at
    /// `start` (`public/high`, `email/normal`, …). A public message gets the public target.
    pub fn first_response_due(
        &self,
        channel: ChannelKind,
        visibility: Visibility,
        priority: Priority,
        start: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let class = SlaClass::of(channel, visibility);
        let minutes = self.settings.first_response.of(class).get(priority);
        (
            format!("{class}/{priority}"),
            self.settings
                .business_hours
                .add_business_minutes(start, minutes),
        )
    }

    /// The policy name (`resolution/<priority>`) and due time of the resolution of a ticket
    /// created at `start`.
    pub fn resolution_due(
        &self,
        priority: Priority,
        start: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let minutes = self.settings.resolution.get(priority);
        (
            format!("resolution/{priority}"),
            self.settings
                .business_hours
                .add_business_minutes(start, minutes),
        )
    }

    /// How long before its due time a ticket counts as nearing its breach.
    pub fn warn_before(&self) -> Duration {
        Duration::minutes(i64::from(self.settings.warn_before_minutes))
    }
}

/// Where a ticket's first-response clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// No target applies.
    None,
    /// Waiting, with time left.
    Ok,
    /// Waiting, due within the warning window.
    Nearing,
    /// Due time reached without a response, or answered late.
    Breached,
    /// Answered in time.
    Met,
}

impl SlaState {
    /// The state of `clock` at `now`, nearing within `warn` of the due time. Only the first
    /// response stops the clock (solving a ticket does not answer the customer); a due time
    /// reached (`due <= now`) is a breach.
    pub fn of(clock: &SlaClock, now: DateTime<Utc>, warn: Duration) -> SlaState {
        let Some(due) = clock.first_response_due else {
            return SlaState::None;
        };
        match clock.first_response_at {
            Some(at) if at <= due => SlaState::Met,
            Some(_) => SlaState::Breached,
            None if due <= now => SlaState::Breached,
            None if due - warn <= now => SlaState::Nearing,
            None => SlaState::Ok,
        }
    }

    /// The state's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaState::None => "none",
            SlaState::Ok => "ok",
            SlaState::Nearing => "nearing",
            SlaState::Breached => "breached",
            SlaState::Met => "met",
        }
    }
}

impl fmt::Display for SlaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn berlin() -> BusinessHours {
        BusinessHours {
            time_zone: "Europe/Berlin".parse().unwrap(),
            ..BusinessHours::default()
        }
    }

    fn policies(hours: BusinessHours) -> SlaPolicies {
        SlaPolicies::new(SlaSettings {
            business_hours: hours,
            ..SlaSettings::default()
        })
        .unwrap()
    }

    #[test]
    fn friday_afternoon_plus_an_hour_is_monday_morning() {
        // 2026-11-27 is a Friday.
        let hours = BusinessHours::default();
        assert_eq!(
            hours.add_business_minutes(utc("2026-11-27T16:30:00Z"), 60),
            utc("2026-11-30T09:30:00Z")
        );
    }

    #[test]
    fn a_target_ending_at_closing_time_is_due_at_closing_time() {
        let hours = BusinessHours::default();
        assert_eq!(
            hours.add_business_minutes(utc("2026-11-27T16:00:00Z"), 60),
            utc("2026-11-27T17:00:00Z")
        );
    }

    #[test]
    fn a_start_outside_hours_counts_from_the_next_opening() {
        let hours = BusinessHours::default();
        // Tuesday night, Saturday noon, Monday at dawn.
        assert_eq!(
            hours.add_business_minutes(utc("2026-11-24T22:00:00Z"), 30),
            utc("2026-11-25T09:30:00Z")
        );
        assert_eq!(
            hours.add_business_minutes(utc("2026-11-28T12:00:00Z"), 5),
            utc("2026-11-30T09:05:00Z")
        );
        assert_eq!(
            hours.add_business_minutes(utc("2026-11-30T06:00:00Z"), 480),
            utc("2026-11-30T17:00:00Z")
        );
    }

    #[test]
    fn email_takes_eight_business_hours_across_a_night() {
        let p = policies(BusinessHours::default());
        let (policy, due) = p.first_response_due(
            ChannelKind::Email,
            Visibility::Private,
            Priority::Normal,
            utc("2026-11-24T13:00:00Z"),
        );
        assert_eq!(policy, "email/normal");
        assert_eq!(due, utc("2026-11-25T13:00:00Z"));
    }

    #[test]
    fn counts_in_the_time_zone() {
        // 16:30 in Berlin (CET, UTC+1) on a Friday, one business hour: Monday 09:30 Berlin.
        assert_eq!(
            berlin().add_business_minutes(utc("2026-11-27T15:30:00Z"), 60),
            utc("2026-11-30T08:30:00Z")
        );
    }

    #[test]
    fn spring_forward_in_berlin_keeps_business_hours_in_local_time() {
        // Sunday 2026-03-29 clocks go 02:00 -> 03:00. Friday 16:30 CET (15:30Z) plus 60
        // minutes: Monday 09:30 CEST, which is 07:30Z.
        assert_eq!(
            berlin().add_business_minutes(utc("2026-03-27T15:30:00Z"), 60),
            utc("2026-03-30T07:30:00Z")
        );
    }

    #[test]
    fn the_dst_day_itself_has_its_real_length() {
        // Open round the clock in Berlin: the spring day has 23 hours, the autumn day 25.
        let mut hours = berlin();
        for day in [
            &mut hours.monday,
            &mut hours.tuesday,
            &mut hours.wednesday,
            &mut hours.thursday,
            &mut hours.friday,
            &mut hours.saturday,
            &mut hours.sunday,
        ] {
            *day = "00:00-24:00".parse().unwrap();
        }
        // From Sunday 00:00 CET (Saturday 23:00Z), the next local midnight is 23 real hours
        // away.
        let start = utc("2026-03-28T23:00:00Z");
        assert_eq!(
            hours.add_business_minutes(start, 23 * 60),
            utc("2026-03-29T22:00:00Z")
        );
        // Autumn: Sunday 2026-10-25 03:00 CEST -> 02:00 CET; the day has 25 real hours.
        let start = utc("2026-10-24T22:00:00Z"); // Sunday 00:00 CEST
        assert_eq!(
            hours.add_business_minutes(start, 25 * 60),
            utc("2026-10-25T23:00:00Z") // Monday 00:00 CET
        );
        assert!(hours.is_open(utc("2026-10-25T01:30:00Z")));
    }

    #[test]
    fn opening_inside_a_dst_gap_opens_when_the_gap_ends() {
        let mut hours = berlin();
        hours.sunday = "02:30-04:00".parse().unwrap();
        // 02:30 does not exist on 2026-03-29: open from 03:00 CEST (01:00Z) to 04:00 CEST.
        assert_eq!(
            hours.add_business_minutes(utc("2026-03-28T23:00:00Z"), 60),
            utc("2026-03-29T02:00:00Z")
        );
    }

    #[test]
    fn skips_holidays_dated_and_annual() {
        // Thursday 2026-12-24 is off, and every 12-25 (a Friday in 2026).
        let hours = BusinessHours {
            holidays: vec!["2026-12-24".parse().unwrap(), "12-25".parse().unwrap()],
            ..BusinessHours::default()
        };
        assert_eq!(
            hours.add_business_minutes(utc("2026-12-23T16:30:00Z"), 60),
            utc("2026-12-28T09:30:00Z")
        );
        assert!(!hours.is_open(utc("2026-12-24T10:00:00Z")));
        assert!(hours.is_open(utc("2026-12-23T10:00:00Z")));
        assert!(hours.is_holiday(NaiveDate::from_ymd_opt(2031, 12, 25).unwrap()));
        assert!(!hours.is_holiday(NaiveDate::from_ymd_opt(2027, 12, 24).unwrap()));
    }

    #[test]
    fn always_open_counts_every_minute() {
        let p = policies(BusinessHours::always());
        let (_, due) = p.first_response_due(
            ChannelKind::Twitter,
            Visibility::Public,
            Priority::Normal,
            utc("2026-11-28T23:30:00Z"),
        );
        assert_eq!(due, utc("2026-11-29T00:30:00Z"));
    }

    #[test]
    fn a_higher_priority_shortens_the_target() {
        let p = policies(BusinessHours::always());
        let start = utc("2026-11-24T10:00:00Z");
        let due = |priority| {
            p.first_response_due(ChannelKind::Facebook, Visibility::Public, priority, start)
                .1
        };
        assert!(due(Priority::Low) > due(Priority::Normal));
        assert!(due(Priority::Normal) > due(Priority::High));
        assert!(due(Priority::High) > due(Priority::Urgent));
        assert_eq!(due(Priority::Urgent), utc("2026-11-24T10:15:00Z"));
    }

    #[test]
    fn a_public_message_gets_the_public_target_on_any_channel() {
        let p = policies(BusinessHours::always());
        let start = utc("2026-11-24T10:00:00Z");
        let of = |channel, visibility| {
            p.first_response_due(channel, visibility, Priority::Normal, start)
        };
        assert_eq!(
            of(ChannelKind::Instagram, Visibility::Public),
            ("public/normal".into(), utc("2026-11-24T11:00:00Z"))
        );
        assert_eq!(
            of(ChannelKind::Instagram, Visibility::Private),
            ("direct/normal".into(), utc("2026-11-24T14:00:00Z"))
        );
        assert_eq!(
            of(ChannelKind::Chat, Visibility::Private),
            ("chat/normal".into(), utc("2026-11-24T10:05:00Z"))
        );
        assert_eq!(of(ChannelKind::Chat, Visibility::Public).0, "public/normal");
    }

    #[test]
    fn resolution_has_its_own_targets() {
        let p = policies(BusinessHours::default());
        let (policy, due) = p.resolution_due(Priority::Urgent, utc("2026-11-24T09:00:00Z"));
        assert_eq!(policy, "resolution/urgent");
        assert_eq!(due, utc("2026-11-24T17:00:00Z"));
    }

    #[test]
    fn states_of_a_clock() {
        let due = utc("2026-11-24T10:00:00Z");
        let warn = Duration::minutes(15);
        let waiting = SlaClock {
            first_response_due: Some(due),
            ..SlaClock::default()
        };
        let at = |s: &str| SlaState::of(&waiting, utc(s), warn);
        assert_eq!(at("2026-11-24T09:44:00Z"), SlaState::Ok);
        assert_eq!(at("2026-11-24T09:45:00Z"), SlaState::Nearing);
        assert_eq!(at("2026-11-24T10:00:00Z"), SlaState::Breached);
        let answered = |s: &str| SlaClock {
            first_response_at: Some(utc(s)),
            ..waiting.clone()
        };
        let later = utc("2026-11-25T00:00:00Z");
        assert_eq!(
            SlaState::of(&answered("2026-11-24T09:59:00Z"), later, warn),
            SlaState::Met
        );
        assert_eq!(
            SlaState::of(&answered("2026-11-24T10:01:00Z"), later, warn),
            SlaState::Breached
        );
        assert_eq!(
            SlaState::of(&SlaClock::default(), later, warn),
            SlaState::None
        );
        assert_eq!(serde_json::to_value(SlaState::Nearing).unwrap(), "nearing");
    }

    #[test]
    fn parses_day_hours_and_refuses_nonsense() {
        let d: DayHours = "13:00-17:00, 08:00-12:00".parse().unwrap();
        assert_eq!(d.ranges(), &[(480, 720), (780, 1020)]);
        assert_eq!(d.to_string(), "08:00-12:00, 13:00-17:00");
        assert!("closed".parse::<DayHours>().unwrap().is_closed());
        assert_eq!(
            "00:00-24:00".parse::<DayHours>().unwrap().ranges(),
            &[(0, 1440)]
        );
        for bad in [
            "9-17",
            "17:00-09:00",
            "09:00-25:00",
            "09:60-10:00",
            "08:00-12:00, 11:00-13:00",
            "nine to five",
        ] {
            assert!(bad.parse::<DayHours>().is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_bad_setting() {
        let mut s = SlaSettings::default();
        s.first_response.chat.urgent = 0;
        let err = s.validate().unwrap_err();
        assert!(
            err.to_string().contains("sla.first_response.chat.urgent"),
            "{err}"
        );
        let mut s = SlaSettings::default();
        s.business_hours.monday = DayHours::closed();
        s.business_hours.tuesday = DayHours::closed();
        s.business_hours.wednesday = DayHours::closed();
        s.business_hours.thursday = DayHours::closed();
        s.business_hours.friday = DayHours::closed();
        assert_eq!(s.validate(), Err(SlaSettingsError::NeverOpen));
        s.business_hours.always_open = true;
        assert!(s.validate().is_ok());
        assert!(SlaSettings::default().validate().is_ok());
    }
}
