//! The Graph API version every Graph call goes to, and when Meta retires each version.
//!
//! The version is configuration (`CROSSDESK_GRAPH_API_VERSION`, default
//! [`GRAPH_API_VERSION`]), so a deployment can move to a newer version without a new build, and
//! [`graph_version_status`] tells from the table below how long the configured version still
//! works; `GET /api/channels` and the health check show it ([`graph_version_finding`]),
//! warning [`RETIREMENT_WARNING_DAYS`] days ahead.
//!
//! Meta keeps each version available for about two years after the next version's release (at
//! least two years after its own) and publishes the exact date once the next version ships. The table holds Meta's published "Available Until" dates
//! (`None` while Meta says "TBD"). Sources, read 2026-11-30:
//! - Graph API changelog, "Available Graph API Versions":
//!   <https://developers.facebook.com/docs/graph-api/changelog>
//! - Graph API versions, release and expiration dates:
//!   <https://developers.facebook.com/docs/graph-api/changelog/versions/>
//!
//! Keep it current when Meta ships a version: add its row and the retirement date it gives the
//! previous one.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use crossdesk_core::health::{ChannelFinding, CheckStatus};
use thiserror::Error;

pub use crate::facebook_send::GRAPH_API_VERSION;

/// The variable holding the Graph API version.
pub const GRAPH_API_VERSION_VARIABLE: &str = "CROSSDESK_GRAPH_API_VERSION";
/// How many days before a version's retirement the health check starts warning.
pub const RETIREMENT_WARNING_DAYS: i64 = 120;
/// The name of the finding that shows the Graph API version.
pub const GRAPH_VERSION_CHECK: &str = "graph_api_version";

/// One Graph API version: when Meta released it and until when it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphVersionDates {
    /// The version, `vNN.N`.
    pub version: &'static str,
    /// Meta's release date (year, month, day).
    pub released: (i32, u32, u32),
    /// The last date Meta serves it ("Available Until"); `None` while Meta says TBD.
    pub available_until: Option<(i32, u32, u32)>,
}

impl GraphVersionDates {
    /// The release date.
    pub fn released_on(&self) -> NaiveDate {
        ymd(self.released)
    }

    /// The retirement date, once Meta has published it.
    pub fn retires_on(&self) -> Option<NaiveDate> {
        self.available_until.map(ymd)
    }
}

fn ymd((y, m, d): (i32, u32, u32)) -> NaiveDate {
    // Every row is checked by `every_row_of_the_table_is_a_real_date_in_order`.
    NaiveDate::from_ymd_opt(y, m, d).expect("the Graph version table holds real dates")
}

const fn row(
    version: &'static str,
    released: (i32, u32, u32),
    available_until: Option<(i32, u32, u32)>,
) -> GraphVersionDates {
    GraphVersionDates {
        version,
        released,
        available_until,
    }
}

/// Graph API versions, newest first (see the module documentation for the sources).
pub const GRAPH_API_VERSIONS: &[GraphVersionDates] = &[
    row("v26.0", (2026, 7, 29), None),
    row("v25.0", (2026, 2, 18), Some((2028, 7, 29))),
    row("v24.0", (2025, 10, 8), Some((2028, 2, 18))),
    row("v23.0", (2025, 5, 29), Some((2027, 10, 8))),
    row("v22.0", (2025, 1, 21), Some((2027, 5, 20))),
    row("v21.0", (2024, 10, 2), Some((2027, 1, 21))),
    row("v20.0", (2024, 5, 21), Some((2026, 9, 24))),
    row("v19.0", (2024, 1, 23), Some((2026, 5, 21))),
    row("v18.0", (2023, 9, 12), Some((2026, 1, 26))),
    row("v17.0", (2023, 5, 23), Some((2025, 9, 12))),
    row("v16.0", (2023, 2, 2), Some((2025, 5, 14))),
    row("v15.0", (2022, 9, 15), Some((2024, 11, 20))),
    row("v14.0", (2022, 5, 25), Some((2024, 9, 17))),
    row("v13.0", (2022, 2, 8), Some((2024, 5, 28))),
    row("v12.0", (2021, 9, 14), Some((2024, 2, 8))),
];

/// A Graph API version as it appears in the URL path: `v` then `major.minor` (`v21.0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GraphApiVersion(String);

/// A Graph API version that is not of the form `vNN.N`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("`{0}` is not a Graph API version such as {GRAPH_API_VERSION} (v, then major.minor)")]
pub struct InvalidGraphVersion(pub String);

impl GraphApiVersion {
    /// Parses `vNN.N` (a `v`, 1 to 3 digits, a dot, 1 or 2 digits).
    pub fn parse(value: &str) -> Result<Self, InvalidGraphVersion> {
        let invalid = || InvalidGraphVersion(value.to_string());
        let (major, minor) = value
            .strip_prefix('v')
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(invalid)?;
        let digits = |s: &str, max: usize| {
            (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(major, 3) || !digits(minor, 2) {
            return Err(invalid());
        }
        Ok(GraphApiVersion(value.to_string()))
    }

    /// The version Crossdesk is written and tested against ([`GRAPH_API_VERSION`]).
    pub fn pinned() -> Self {
        GraphApiVersion(GRAPH_API_VERSION.to_string())
    }

    /// The version, as in the URL path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its row in [`GRAPH_API_VERSIONS`], if Crossdesk knows it.
    pub fn dates(&self) -> Option<&'static GraphVersionDates> {
        GRAPH_API_VERSIONS.iter().find(|row| row.version == self.0)
    }
}

impl Default for GraphApiVersion {
    fn default() -> Self {
        Self::pinned()
    }
}

impl FromStr for GraphApiVersion {
    type Err = InvalidGraphVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for GraphApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long a Graph API version still works, on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphVersionStatus {
    /// Works, and will for more than [`RETIREMENT_WARNING_DAYS`] days (`None`: Meta has not
    /// announced a date yet).
    Current {
        /// Meta's retirement date, when published.
        until: Option<NaiveDate>,
    },
    /// Meta retires it on `on`, within [`RETIREMENT_WARNING_DAYS`] days.
    RetiresSoon {
        /// The retirement date.
        on: NaiveDate,
    },
    /// Meta retired it on `on`: Graph calls with it fail or are served by another version.
    Retired {
        /// The retirement date.
        on: NaiveDate,
    },
    /// Not in Crossdesk's table: its retirement cannot be watched.
    Unknown,
}

/// The status of `version` on `today`, from [`GRAPH_API_VERSIONS`]: retired from its
/// "available until" date on, retiring soon in the [`RETIREMENT_WARNING_DAYS`] days before.
pub fn graph_version_status(version: &GraphApiVersion, today: NaiveDate) -> GraphVersionStatus {
    let Some(dates) = version.dates() else {
        return GraphVersionStatus::Unknown;
    };
    match dates.retires_on() {
        None => GraphVersionStatus::Current { until: None },
        Some(on) if today >= on => GraphVersionStatus::Retired { on },
        Some(on) if (on - today).num_days() <= RETIREMENT_WARNING_DAYS => {
            GraphVersionStatus::RetiresSoon { on }
        }
        Some(on) => GraphVersionStatus::Current { until: Some(on) },
    }
}

/// What `GET /api/channels` and the health check say about the Graph API version of the
/// Facebook and Instagram channels on `today`: `ok` while current, a `warning` when it retires
/// soon or is not in the table, `failing` once retired.
pub fn graph_version_finding(version: &GraphApiVersion, today: NaiveDate) -> ChannelFinding {
    let newest = GRAPH_API_VERSIONS[0].version;
    let move_on = format!(
        "re-read Meta's changelog for the Send API and the comment edges, then set \
         {GRAPH_API_VERSION_VARIABLE} to a newer version (newest known: {newest})"
    );
    let (status, reason) = match graph_version_status(version, today) {
        GraphVersionStatus::Current { until: Some(on) } => {
            (CheckStatus::Ok, format!("{version}: available until {on}"))
        }
        GraphVersionStatus::Current { until: None } => (
            CheckStatus::Ok,
            format!("{version}: current, no retirement date announced"),
        ),
        GraphVersionStatus::RetiresSoon { on } => (
            CheckStatus::Warning,
            format!(
                "{version} is retired by Meta on {on} (in {} days); after that Graph calls \
                 (replies, health checks) fail: {move_on}",
                (on - today).num_days()
            ),
        ),
        GraphVersionStatus::Retired { on } => (
            CheckStatus::Failing,
            format!("{version} was retired by Meta on {on}: {move_on}"),
        ),
        GraphVersionStatus::Unknown => (
            CheckStatus::Warning,
            format!(
                "{version} is not in Crossdesk's table of Graph API versions, so its \
                 retirement is not watched: check Meta's changelog, or use a version the table \
                 knows (newest known: {newest})"
            ),
        ),
    };
    ChannelFinding {
        check: GRAPH_VERSION_CHECK.into(),
        status,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn v(s: &str) -> GraphApiVersion {
        GraphApiVersion::parse(s).unwrap()
    }

    #[test]
    fn the_pinned_default_is_in_the_table() {
        let pinned = GraphApiVersion::pinned();
        assert_eq!(pinned.as_str(), GRAPH_API_VERSION);
        assert!(pinned.dates().is_some(), "{pinned} has no row");
        assert_eq!(GraphApiVersion::default(), pinned);
    }

    #[test]
    fn every_row_of_the_table_is_a_real_date_in_order() {
        let mut previous: Option<&GraphVersionDates> = None;
        for row in GRAPH_API_VERSIONS {
            assert!(
                GraphApiVersion::parse(row.version).is_ok(),
                "{}",
                row.version
            );
            let released = row.released_on();
            if let Some(until) = row.retires_on() {
                // Meta serves a version at least two years, and has never kept one three:
                // catches a mistyped year.
                assert!(
                    until >= released + chrono::Months::new(24)
                        && until <= released + chrono::Months::new(36),
                    "{} released {released}, retired {until}",
                    row.version
                );
            }
            match previous {
                Some(newer) => {
                    assert!(newer.released_on() > released, "{} order", row.version);
                    if let (Some(until), Some(newer_until)) = (row.retires_on(), newer.retires_on())
                    {
                        assert!(
                            until < newer_until,
                            "{} retires after {}",
                            row.version,
                            newer.version
                        );
                    }
                }
                None => assert_eq!(row.available_until, None, "the newest has no date yet"),
            }
            previous = Some(row);
        }
    }

    #[test]
    fn parses_vnn_n_and_refuses_anything_else() {
        assert_eq!(v("v21.0").as_str(), "v21.0");
        assert_eq!(v("v2.12").to_string(), "v2.12");
        assert_eq!("v25.0".parse::<GraphApiVersion>(), Ok(v("v25.0")));
        for bad in [
            "", "21.0", "v21", "v21.", "v.0", "V21.0", "v21.0/", " v21.0", "v21.0.1", "v2a.0",
            "v1000.0", "v21.100", "latest",
        ] {
            assert_eq!(
                GraphApiVersion::parse(bad),
                Err(InvalidGraphVersion(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn status_boundaries_around_retirement() {
        let v21 = v("v21.0"); // available until 2027-01-21
        let on = day(2027, 1, 21);
        assert_eq!(
            graph_version_status(&v21, day(2026, 9, 22)),
            GraphVersionStatus::Current { until: Some(on) },
            "121 days before"
        );
        assert_eq!(
            graph_version_status(&v21, day(2026, 9, 23)),
            GraphVersionStatus::RetiresSoon { on },
            "120 days before"
        );
        assert_eq!(
            graph_version_status(&v21, day(2027, 1, 20)),
            GraphVersionStatus::RetiresSoon { on },
            "the last day"
        );
        assert_eq!(
            graph_version_status(&v21, day(2027, 1, 21)),
            GraphVersionStatus::Retired { on },
            "the retirement day"
        );
        assert_eq!(
            graph_version_status(&v21, day(2030, 1, 1)),
            GraphVersionStatus::Retired { on }
        );
    }

    #[test]
    fn a_version_without_a_date_is_current_and_one_not_in_the_table_unknown() {
        assert_eq!(
            graph_version_status(&v("v26.0"), day(2026, 11, 30)),
            GraphVersionStatus::Current { until: None }
        );
        assert_eq!(
            graph_version_status(&v("v99.0"), day(2026, 11, 30)),
            GraphVersionStatus::Unknown
        );
        assert_eq!(
            graph_version_status(&v("v2.12"), day(2026, 11, 30)),
            GraphVersionStatus::Unknown,
            "too old to be listed"
        );
    }

    #[test]
    fn findings_grade_the_status() {
        let ok = graph_version_finding(&v("v24.0"), day(2026, 11, 30));
        assert_eq!(ok.check, "graph_api_version");
        assert_eq!(ok.status, CheckStatus::Ok);
        assert_eq!(ok.reason, "v24.0: available until 2028-02-18");

        let soon = graph_version_finding(&v("v21.0"), day(2026, 11, 30));
        assert_eq!(soon.status, CheckStatus::Warning);
        assert!(
            soon.reason
                .starts_with("v21.0 is retired by Meta on 2027-01-21 (in 52 days)"),
            "{}",
            soon.reason
        );
        assert!(soon.reason.contains("CROSSDESK_GRAPH_API_VERSION"));

        let retired = graph_version_finding(&v("v20.0"), day(2026, 11, 30));
        assert_eq!(retired.status, CheckStatus::Failing);
        assert!(retired.reason.contains("retired by Meta on 2026-09-24"));

        let unknown = graph_version_finding(&v("v99.0"), day(2026, 11, 30));
        assert_eq!(unknown.status, CheckStatus::Warning);
        assert!(unknown.reason.contains("not in Crossdesk's table"));
    }
}
