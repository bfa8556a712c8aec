//! `build` and `buildWithParameters`: validating a trigger and putting it in the queue.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;

use super::reply::{html_error, not_found, redirect, Reply, Req};
use super::state::State;

/// `POST /job/…/buildWithParameters`.
pub(crate) fn build_with_parameters(st: &mut State, name: &str, req: &Req) -> Reply {
    let Some(job) = st.jobs.get(name) else {
        return not_found().into();
    };
    if job.disabled {
        return not_buildable(name);
    }
    let Some(definitions) = &job.params else {
        let message = format!("{name} is not parameterized");
        return html_error(StatusCode::BAD_REQUEST, &message).into();
    };

    // Only defined parameters are read; anything else in the request is ignored.
    let mut values = Vec::with_capacity(definitions.len());
    for definition in definitions {
        match req.values(definition).as_slice() {
            [] => values.push((definition.clone(), String::new())),
            [one] => values.push((definition.clone(), (*one).to_owned())),
            many => {
                let message = format!(
                    "Illegal number of parameter values for {definition}: {}",
                    many.len()
                );
                return html_error(StatusCode::BAD_REQUEST, &message).into();
            }
        }
    }

    let delay = match delay(st, req) {
        Ok(delay) => delay,
        Err(reply) => return *reply,
    };
    let (id, created) = st.schedule(name, Some(values), delay, req.now);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::SEE_OTHER
    };
    Reply {
        response: redirect(status, &st.queue_item_url(id)),
        queue_id: Some(id),
    }
}

/// `POST /job/…/build`: schedules an unparameterized job, or a parameterized one from the
/// `json` form field (`{"parameter":[{"name":…,"value":…}]}`). Always 201, even on a merge.
pub(crate) fn build(st: &mut State, name: &str, req: &Req) -> Reply {
    let Some(job) = st.jobs.get(name) else {
        return not_found().into();
    };
    if job.disabled {
        return not_buildable(name);
    }

    let params = match &job.params {
        None => None,
        Some(definitions) => match json_parameters(definitions, req.param("json")) {
            Ok(values) => Some(values),
            Err(message) => return html_error(StatusCode::BAD_REQUEST, &message).into(),
        },
    };
    let delay = match delay(st, req) {
        Ok(delay) => delay,
        Err(reply) => return *reply,
    };
    let (id, _created) = st.schedule(name, params, delay, req.now);
    Reply {
        response: redirect(StatusCode::CREATED, &st.queue_item_url(id)),
        queue_id: Some(id),
    }
}

fn not_buildable(name: &str) -> Reply {
    html_error(StatusCode::CONFLICT, &format!("{name} is not buildable")).into()
}

/// The `delay` parameter, or the job's quiet period when absent; a 400 if unparsable.
fn delay(st: &State, req: &Req) -> Result<Duration, Box<Reply>> {
    match req.param("delay") {
        None => Ok(st.settings.quiet_period),
        Some(text) => parse_delay(text).ok_or_else(|| {
            let message = format!("Invalid time duration value: {text}");
            Box::new(html_error(StatusCode::BAD_REQUEST, &message).into())
        }),
    }
}

/// Parses a delay as `TimeDuration.fromString` does: a plain number is milliseconds,
/// a `sec` or `secs` suffix means seconds. Negative values mean no delay.
pub(crate) fn parse_delay(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("secs") {
        (n, 1000)
    } else if let Some(n) = text.strip_suffix("sec") {
        (n, 1000)
    } else {
        (text, 1)
    };
    let value: i64 = number.trim().parse().ok()?;
    let ms = u64::try_from(value.max(0)).ok()?.checked_mul(unit_ms)?;
    Some(Duration::from_millis(ms))
}

/// Reads the `json` form field of a parameterized `/build` POST.
fn json_parameters(
    definitions: &[String],
    field: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    let field = field.ok_or("This page expects a form submission")?;
    let doc: Value = serde_json::from_str(field).map_err(|e| format!("Malformed JSON: {e}"))?;
    let given: Vec<&Value> = match doc.get("parameter") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };

    let mut values: Vec<(String, String)> = definitions
        .iter()
        .map(|d| (d.clone(), String::new()))
        .collect();
    for entry in given {
        let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(slot) = values.iter_mut().find(|(d, _)| d == name) else {
            return Err(format!("No such parameter definition: {name}"));
        };
        slot.1 = match entry.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::parse_delay;
    use std::time::Duration;

    #[test]
    fn plain_delay_is_milliseconds_and_sec_suffix_is_seconds() {
        assert_eq!(parse_delay("10"), Some(Duration::from_millis(10)));
        assert_eq!(parse_delay("10sec"), Some(Duration::from_secs(10)));
        assert_eq!(parse_delay("3 secs"), Some(Duration::from_secs(3)));
        assert_eq!(parse_delay("0sec"), Some(Duration::ZERO));
        assert_eq!(parse_delay("soon"), None);
    }
}
