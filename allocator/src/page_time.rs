//! Times on the pages as people write them, "Tue 8 Dec, 09:00 (Lisbon)", never raw RFC 3339:
//! in the workshop's time zone where there is one, else in UTC with a mark that lets the
//! page's script show it in the browser's own zone. The API and the exports keep RFC 3339.
//!
//! Templates use the `when` helper: `{{when at}}`, or `{{when at offset=… zone=…}}` with a
//! workshop's UTC offset (seconds) and zone name, or `{{when at own=true zone=…}}` for a time
//! that carries its zone's offset. It writes a `<time>` element whose `datetime` is the exact
//! instant. `{{staff_step step}}` names a journey step in staff words.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use lablink_schema::wire::JourneyStep;

/// The format of the date and the clock: weekday, day, month, hours and minutes.
const FORMAT: &str = "%a %-d %b, %H:%M";

/// A zone as a page names it: the place of an `Area/Place` name ("Europe/Lisbon" →
/// "Lisbon", "America/Los_Angeles" → "Los Angeles"), else the name as given, else the offset.
pub fn zone_label(zone: Option<&str>, offset: FixedOffset) -> String {
    match zone.map(str::trim).filter(|zone| !zone.is_empty()) {
        Some(zone) => zone.rsplit('/').next().unwrap_or(zone).replace('_', " "),
        None if offset.local_minus_utc() == 0 => "UTC".to_owned(),
        None => format!("UTC{offset}"),
    }
}

/// `at` in the zone `offset` (named `zone`), as people write it.
pub fn human(at: DateTime<Utc>, offset: FixedOffset, zone: Option<&str>) -> String {
    format!(
        "{} ({})",
        at.with_timezone(&offset).format(FORMAT),
        zone_label(zone, offset)
    )
}

/// A time as pages and the API carry it: RFC 3339 with an offset, or a naive time (UTC, as
/// the database stores it), with or without fractions of a second.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|at| at.and_utc())
}

/// The `<time>` element for `at`: in the given zone, or in UTC marked for the browser's zone.
pub fn element(at: DateTime<Utc>, zone: Option<(FixedOffset, Option<&str>)>) -> String {
    let exact = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match zone {
        Some((offset, name)) => format!(
            "<time datetime=\"{exact}\">{}</time>",
            handlebars::html_escape(&human(at, offset, name))
        ),
        None => format!(
            "<time datetime=\"{exact}\" data-local=\"1\">{}</time>",
            human(at, FixedOffset::east_opt(0).expect("UTC"), None)
        ),
    }
}

/// Registers the `when` and `staff_step` helpers.
pub fn register(registry: &mut Handlebars<'static>) {
    registry.register_helper("when", Box::new(when_helper));
    registry.register_helper("staff_step", Box::new(staff_step_helper));
}

fn when_helper(
    helper: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let Some(text) = helper.param(0).and_then(|p| p.value().as_str()) else {
        return Ok(()); // no time: nothing shown
    };
    let Some(at) = parse(text) else {
        // Not a time after all: shown as it is, escaped.
        out.write(&handlebars::html_escape(text))?;
        return Ok(());
    };
    let offset = helper
        .hash_get("offset")
        .and_then(|v| v.value().as_i64())
        .and_then(|secs| i32::try_from(secs).ok())
        .and_then(FixedOffset::east_opt);
    // `own=true`: the time carries the zone's offset itself (RFC 3339 with an offset).
    let own = helper
        .hash_get("own")
        .and_then(|v| v.value().as_bool())
        .unwrap_or(false);
    let offset = offset.or_else(|| {
        own.then(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|at| *at.offset())
        })
        .flatten()
    });
    let zone = helper.hash_get("zone").and_then(|v| v.value().as_str());
    out.write(&element(at, offset.map(|offset| (offset, zone))))?;
    Ok(())
}

fn staff_step_helper(
    helper: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let value = helper
        .param(0)
        .map(|p| p.value().clone())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("staff_step", 0))?;
    match serde_json::from_value::<JourneyStep>(value.clone()) {
        Ok(step) => out.write(step.staff_label())?,
        Err(_) => out.write(&handlebars::html_escape(value.as_str().unwrap_or_default()))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_write_them() {
        let at = parse("2026-12-08T09:00:44.984715307").expect("naive UTC");
        let lisbon = FixedOffset::east_opt(0).expect("offset");
        assert_eq!(
            human(at, lisbon, Some("Europe/Lisbon")),
            "Tue 8 Dec, 09:00 (Lisbon)"
        );
        let la = FixedOffset::west_opt(8 * 3600).expect("offset");
        assert_eq!(
            human(at, la, Some("America/Los_Angeles")),
            "Tue 8 Dec, 01:00 (Los Angeles)"
        );
        assert_eq!(human(at, la, None), "Tue 8 Dec, 01:00 (UTC-08:00)");
        assert_eq!(
            parse("2026-12-08T10:00:00+01:00"),
            parse("2026-12-08T09:00:00Z")
        );
        let element = element(at, None);
        assert!(
            element.contains("datetime=\"2026-12-08T09:00:44Z\""),
            "{element}"
        );
        assert!(element.contains("data-local"), "{element}");
        assert!(element.contains("Tue 8 Dec, 09:00 (UTC)"), "{element}");
    }

    #[test]
    fn the_helpers_render_in_a_template() {
        let mut registry = Handlebars::new();
        register(&mut registry);
        let page = registry
            .render_template(
                "{{when at offset=3600 zone=\"Europe/Paris\"}} {{staff_step step}}",
                &serde_json::json!({"at": "2026-12-08T08:00:00Z", "step": "command_received"}),
            )
            .expect("render");
        assert_eq!(
            page,
            "<time datetime=\"2026-12-08T08:00:00Z\">Tue 8 Dec, 09:00 (Paris)</time> command received"
        );
    }
}
