//! Jenkins URL paths: parsing a request path into a route, and encoding job names into URLs.
//!
//! A job's full name joins its stored item names with `/`. In a URL each name becomes one
//! `/job/<rawEncode(name)>` segment, so a multibranch branch stored as `feature%2Fx` is
//! addressed as `/job/feature%252Fx/`. Parsing decodes every segment exactly once.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// The characters `hudson.Util.rawEncode` escapes in a path segment (non-ASCII always is).
const RAW_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'~')
    .add(b'/')
    .add(b';')
    .add(b':')
    .add(b'?');

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/` (the dashboard) or `/api/json`.
    Root { api: bool },
    /// `/crumbIssuer/api/json`.
    CrumbIssuer,
    /// `/queue/api/json`.
    Queue,
    /// `/queue/item/<id>/api/json`.
    QueueItem(u64),
    /// `/queue/cancelItem`.
    CancelItem,
    /// `/job/<a>/job/<b>/…` followed by `rest`; `name` is the stored full name.
    Item { name: String, rest: ItemRest },
    /// Anything else.
    NotFound,
}

/// What follows an item's `/job/…` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemRest {
    /// The item's page.
    Page,
    /// `api/json`.
    Api,
    /// `build`.
    Build,
    /// `buildWithParameters`.
    BuildWithParameters,
    /// `<number>/…` or `lastBuild/…`.
    Run { number: RunRef, rest: RunRest },
}

/// How a build is named in a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunRef {
    Number(u64),
    LastBuild,
}

/// What follows a build's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunRest {
    Page,
    Api,
    Stop,
}

/// Parses a raw (still percent-encoded) request path mounted under `prefix`.
pub(crate) fn parse(prefix: &str, raw_path: &str) -> Route {
    let Some(path) = raw_path.strip_prefix(prefix) else {
        return Route::NotFound;
    };
    if !(path.is_empty() || path.starts_with('/')) {
        return Route::NotFound;
    }

    let mut segments: Vec<&str> = path.split('/').skip(1).collect();
    if segments.last() == Some(&"") {
        segments.pop();
    }

    match segments.as_slice() {
        [] => Route::Root { api: false },
        ["api", "json"] => Route::Root { api: true },
        ["crumbIssuer", "api", "json"] => Route::CrumbIssuer,
        ["queue", "api", "json"] => Route::Queue,
        ["queue", "cancelItem"] => Route::CancelItem,
        ["queue", "item", id, "api", "json"] => match id.parse() {
            Ok(id) => Route::QueueItem(id),
            Err(_) => Route::NotFound,
        },
        ["job", ..] => parse_item(&segments),
        _ => Route::NotFound,
    }
}

fn parse_item(segments: &[&str]) -> Route {
    let mut names = Vec::new();
    let mut i = 0;
    while i + 1 < segments.len() && segments[i] == "job" {
        let Ok(name) = percent_decode_str(segments[i + 1]).decode_utf8() else {
            return Route::NotFound;
        };
        // A stored item name never holds `/`: a singly-encoded `%2F` names nothing.
        if name.is_empty() || name.contains('/') {
            return Route::NotFound;
        }
        names.push(name.into_owned());
        i += 2;
    }
    if names.is_empty() {
        return Route::NotFound;
    }

    let rest = match &segments[i..] {
        [] => ItemRest::Page,
        ["api", "json"] => ItemRest::Api,
        ["build"] => ItemRest::Build,
        ["buildWithParameters"] => ItemRest::BuildWithParameters,
        [run, tail @ ..] => {
            let number = match *run {
                "lastBuild" => RunRef::LastBuild,
                n => match n.parse() {
                    Ok(n) => RunRef::Number(n),
                    Err(_) => return Route::NotFound,
                },
            };
            let rest = match tail {
                [] => RunRest::Page,
                ["api", "json"] => RunRest::Api,
                ["stop"] => RunRest::Stop,
                _ => return Route::NotFound,
            };
            ItemRest::Run { number, rest }
        }
    };
    Route::Item {
        name: names.join("/"),
        rest,
    }
}

/// The path of an item below the root URL: `/job/a/job/b/`, each stored name raw-encoded.
pub(crate) fn job_path(full_name: &str) -> String {
    let mut out = String::new();
    for name in full_name.split('/') {
        out.push_str("/job/");
        out.extend(utf8_percent_encode(name, RAW_ENCODE));
    }
    out.push('/');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibranch_name_is_encoded_twice_in_the_url() {
        assert_eq!(
            job_path("group/app/feature%2Fx"),
            "/job/group/job/app/job/feature%252Fx/"
        );
    }

    #[test]
    fn url_segment_is_decoded_exactly_once() {
        let route = parse(
            "",
            "/job/group/job/app/job/feature%252Fx/buildWithParameters",
        );
        assert_eq!(
            route,
            Route::Item {
                name: "group/app/feature%2Fx".to_owned(),
                rest: ItemRest::BuildWithParameters
            }
        );
    }

    #[test]
    fn singly_encoded_slash_names_no_job() {
        assert_eq!(parse("", "/job/app/job/feature%2Fx/"), Route::NotFound);
    }

    #[test]
    fn prefix_must_match_a_whole_segment() {
        assert_eq!(parse("/jenkins", "/jenkinsx/api/json"), Route::NotFound);
        assert_eq!(parse("/jenkins", "/api/json"), Route::NotFound);
        assert_eq!(
            parse("/jenkins", "/jenkins/api/json"),
            Route::Root { api: true }
        );
    }

    #[test]
    fn build_paths_parse_with_or_without_trailing_slash() {
        let want = Route::Item {
            name: "team/app-ci".to_owned(),
            rest: ItemRest::Run {
                number: RunRef::Number(3),
                rest: RunRest::Api,
            },
        };
        assert_eq!(parse("", "/job/team/job/app-ci/3/api/json"), want);
        assert_eq!(parse("", "/job/team/job/app-ci/3/api/json/"), want);
    }
}
