//! The Elasticsearch query DSL subset of DESIGN.md, compiled into the same `QueryAst` as
//! query strings. Unsupported clauses are refused by name.

use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use crate::query_ast::{BoolQuery, QueryAst, RangeBound, MAX_QUERY_DEPTH};
use crate::query_string::{parse_query_string_with, DefaultOperator};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query DSL: {0}")]
pub struct DslError(pub String);

fn error(message: impl Into<String>) -> DslError {
    DslError(message.into())
}

/// Compiles an ES `query` object. `now` anchors date math such as `now-15m`.
pub fn parse_es_query(
    query: &Value,
    default_fields: &[String],
    now: OffsetDateTime,
) -> Result<QueryAst, DslError> {
    let Some((kind, body)) = single_entry(query) else {
        return Err(error(format!(
            "a query must be an object with exactly one clause, got {query}"
        )));
    };
    let parser = DslParser {
        default_fields,
        now,
        depth: std::cell::Cell::new(0),
    };
    parser.clause(kind, body)
}

fn single_entry(value: &Value) -> Option<(&str, &Value)> {
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    object
        .iter()
        .next()
        .map(|(key, value)| (key.as_str(), value))
}

struct DslParser<'a> {
    default_fields: &'a [String],
    now: OffsetDateTime,
    /// Clauses open around the one being compiled.
    depth: std::cell::Cell<usize>,
}

/// A clause's field, its value, and its options object when it had one.
type FieldClause<'v> = (String, &'v Value, Option<&'v Map<String, Value>>);

/// `{"field": value}` or `{"field": {"<key>": value, ...options}}`.
fn field_and_params<'v>(
    clause: &str,
    body: &'v Value,
    value_key: &str,
) -> Result<FieldClause<'v>, DslError> {
    let Some((field, params)) = body.as_object().and_then(|object| {
        let mut entries = object
            .iter()
            .filter(|(key, _)| !matches!(key.as_str(), "boost" | "_name"));
        let entry = entries.next();
        entries.next().is_none().then_some(entry).flatten()
    }) else {
        return Err(error(format!(
            "`{clause}` needs exactly one field, got {body}"
        )));
    };
    match params {
        Value::Object(options) => {
            let value = options
                .get(value_key)
                .ok_or_else(|| error(format!("`{clause}` on `{field}` needs `{value_key}`")))?;
            Ok((field.clone(), value, Some(options)))
        }
        value => Ok((field.clone(), value, None)),
    }
}

fn as_text(clause: &str, value: &Value) -> Result<String, DslError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        other => Err(error(format!(
            "`{clause}` expects a string, number or boolean, got {other}"
        ))),
    }
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    }
}

impl DslParser<'_> {
    fn clause(&self, kind: &str, body: &Value) -> Result<QueryAst, DslError> {
        if self.depth.get() >= MAX_QUERY_DEPTH {
            return Err(error(format!(
                "clauses nested deeper than {MAX_QUERY_DEPTH} levels"
            )));
        }
        self.depth.set(self.depth.get() + 1);
        let compiled = self.compile_clause(kind, body);
        self.depth.set(self.depth.get() - 1);
        compiled
    }

    fn compile_clause(&self, kind: &str, body: &Value) -> Result<QueryAst, DslError> {
        match kind {
            "match_all" => Ok(QueryAst::MatchAll),
            "match_none" => Ok(QueryAst::MatchNone),
            "bool" => self.bool_query(body),
            "term" => {
                let (field, value, _) = field_and_params(kind, body, "value")?;
                Ok(QueryAst::Term {
                    field,
                    value: as_text(kind, value)?,
                })
            }
            "terms" => {
                let (field, values) = body
                    .as_object()
                    .and_then(|object| {
                        object
                            .iter()
                            .find(|(key, _)| !matches!(key.as_str(), "boost" | "_name"))
                    })
                    .ok_or_else(|| error("`terms` needs a field"))?;
                let values = values
                    .as_array()
                    .ok_or_else(|| {
                        error(format!("`terms` on `{field}` expects an array of values"))
                    })?
                    .iter()
                    .map(|value| as_text(kind, value))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(QueryAst::TermSet {
                    field: field.clone(),
                    values,
                })
            }
            "match" => {
                let (field, value, options) = field_and_params(kind, body, "query")?;
                let text = as_text(kind, value)?;
                let operator = options
                    .and_then(|options| options.get("operator"))
                    .and_then(Value::as_str)
                    .unwrap_or("or");
                Ok(self.match_words(&field, &text, operator)?)
            }
            "match_phrase" => {
                let (field, value, options) = field_and_params(kind, body, "query")?;
                let slop = options
                    .and_then(|options| options.get("slop"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0) as u32;
                Ok(QueryAst::Phrase {
                    field,
                    phrase: as_text(kind, value)?,
                    slop,
                })
            }
            "match_phrase_prefix" => {
                let (field, value, _) = field_and_params(kind, body, "query")?;
                let text = as_text(kind, value)?;
                let words: Vec<&str> = text.split_whitespace().collect();
                match words.as_slice() {
                    [] => Ok(QueryAst::MatchNone),
                    [single] => Ok(QueryAst::Wildcard { field, pattern: format!("{}*", escape_wildcard(single)) }),
                    _ => Err(error("`match_phrase_prefix` with several words is not supported yet; use `match_phrase` plus a `prefix` clause")),
                }
            }
            "multi_match" => {
                let object = body
                    .as_object()
                    .ok_or_else(|| error("`multi_match` expects an object"))?;
                let text = as_text(
                    kind,
                    object
                        .get("query")
                        .ok_or_else(|| error("`multi_match` needs `query`"))?,
                )?;
                let fields: Vec<String> = match object.get("fields") {
                    Some(fields) => as_list(fields)
                        .into_iter()
                        .filter_map(Value::as_str)
                        .map(|field| field.split('^').next().unwrap_or(field).to_string())
                        .collect(),
                    None => self.default_fields.to_vec(),
                };
                if fields.is_empty() {
                    return Err(error(
                        "`multi_match` needs `fields` (the index has no default search fields)",
                    ));
                }
                let operator = object
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or("or");
                let phrase = matches!(object.get("type").and_then(Value::as_str), Some("phrase"));
                let clauses = fields
                    .iter()
                    .map(|field| {
                        if phrase {
                            Ok(QueryAst::Phrase {
                                field: field.clone(),
                                phrase: text.clone(),
                                slop: 0,
                            })
                        } else {
                            self.match_words(field, &text, operator)
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(QueryAst::or(clauses))
            }
            "range" => self.range(body),
            // Documents by their stable id (`_id`).
            "ids" => {
                let values = body
                    .get("values")
                    .and_then(Value::as_array)
                    .ok_or_else(|| error("`ids` needs `values`, a list of ids"))?
                    .iter()
                    .map(|value| as_text("ids", value))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(QueryAst::TermSet {
                    field: quarry_config::DOC_ID_FIELD_NAME.to_string(),
                    values,
                })
            }
            "exists" => {
                let field = body
                    .get("field")
                    .and_then(Value::as_str)
                    .ok_or_else(|| error("`exists` needs `field`"))?;
                Ok(QueryAst::Exists {
                    field: field.to_string(),
                })
            }
            "prefix" => {
                let (field, value, _) = field_and_params(kind, body, "value")?;
                Ok(QueryAst::Wildcard {
                    field,
                    pattern: format!("{}*", escape_wildcard(&as_text(kind, value)?)),
                })
            }
            "wildcard" => {
                let (field, value, _) = match field_and_params(kind, body, "value") {
                    Ok(parsed) => parsed,
                    Err(_) => field_and_params(kind, body, "wildcard")?,
                };
                Ok(QueryAst::Wildcard {
                    field,
                    pattern: as_text(kind, value)?,
                })
            }
            "query_string" => {
                let object = body
                    .as_object()
                    .ok_or_else(|| error("`query_string` expects an object"))?;
                let query = object
                    .get("query")
                    .and_then(Value::as_str)
                    .ok_or_else(|| error("`query_string` needs `query`"))?;
                let fields: Vec<String> = match (object.get("fields"), object.get("default_field"))
                {
                    (Some(fields), _) => as_list(fields)
                        .into_iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    (None, Some(Value::String(field))) if field != "*" => vec![field.clone()],
                    _ => self.default_fields.to_vec(),
                };
                let operator = match object
                    .get("default_operator")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_uppercase)
                    .as_deref()
                {
                    None | Some("OR") => DefaultOperator::Or,
                    Some("AND") => DefaultOperator::And,
                    Some(other) => {
                        return Err(error(format!(
                            "`default_operator` must be AND or OR, got `{other}`"
                        )))
                    }
                };
                parse_query_string_with(query, &fields, operator)
                    .map_err(|parse_error| error(format!("in `query_string`: {parse_error}")))
            }
            other => Err(error(format!("the `{other}` query is not supported"))),
        }
    }

    /// `match`: the words of the text, any (`or`) or all (`and`) of them.
    fn match_words(&self, field: &str, text: &str, operator: &str) -> Result<QueryAst, DslError> {
        let terms: Vec<QueryAst> = text
            .split_whitespace()
            .map(|word| QueryAst::Term {
                field: field.to_string(),
                value: word.to_string(),
            })
            .collect();
        if terms.is_empty() {
            return Ok(QueryAst::MatchNone);
        }
        match operator.to_ascii_lowercase().as_str() {
            "or" => Ok(QueryAst::or(terms)),
            "and" => Ok(QueryAst::and(terms)),
            other => Err(error(format!(
                "`operator` must be `and` or `or`, got `{other}`"
            ))),
        }
    }

    fn bool_query(&self, body: &Value) -> Result<QueryAst, DslError> {
        let object = body
            .as_object()
            .ok_or_else(|| error("`bool` expects an object"))?;
        let mut bool_query = BoolQuery::default();
        for (occur, clauses) in object {
            let compiled = as_list(clauses)
                .into_iter()
                .map(|clause| {
                    let (kind, clause_body) = single_entry(clause).ok_or_else(|| error(format!("each `bool.{occur}` clause must be an object with one query, got {clause}")))?;
                    self.clause(kind, clause_body)
                })
                .collect::<Result<Vec<_>, _>>();
            match occur.as_str() {
                "must" => bool_query.must = compiled?,
                "should" => bool_query.should = compiled?,
                "must_not" => bool_query.must_not = compiled?,
                "filter" => bool_query.filter = compiled?,
                "minimum_should_match" => {
                    let minimum = match clauses {
                        Value::Number(number) => number.as_u64().map(|n| n as usize),
                        Value::String(text) => text.parse().ok(),
                        _ => None,
                    };
                    bool_query.minimum_should_match =
                        Some(minimum.ok_or_else(|| {
                            error("`minimum_should_match` must be a whole number")
                        })?);
                }
                "boost" | "_name" => {}
                other => return Err(error(format!("unknown `bool` key `{other}`"))),
            }
        }
        // As in Elasticsearch: with no must/filter, at least one should clause must match.
        if bool_query.minimum_should_match.is_none()
            && !bool_query.should.is_empty()
            && bool_query.must.is_empty()
            && bool_query.filter.is_empty()
        {
            bool_query.minimum_should_match = Some(1);
        }
        Ok(QueryAst::Bool(bool_query))
    }

    fn range(&self, body: &Value) -> Result<QueryAst, DslError> {
        let (field, params) = body
            .as_object()
            .and_then(|object| object.iter().next())
            .ok_or_else(|| error("`range` needs a field"))?;
        let params = params
            .as_object()
            .ok_or_else(|| error(format!("`range` on `{field}` expects an object of bounds")))?;
        let format = params.get("format").and_then(Value::as_str);
        // As in Elasticsearch, rounding (`now/d`) goes up for `gt` and `lte`: "after today"
        // and "up to today" both mean the whole day.
        let bound = |key: &str| -> Result<Option<String>, DslError> {
            match params.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => self
                    .range_value(value, format, matches!(key, "gt" | "lte"))
                    .map(Some),
            }
        };
        let lower = match (bound("gte")?, bound("gt")?) {
            (Some(value), _) => RangeBound::Included(value),
            (None, Some(value)) => RangeBound::Excluded(value),
            (None, None) => RangeBound::Unbounded,
        };
        let upper = match (bound("lte")?, bound("lt")?) {
            (Some(value), _) => RangeBound::Included(value),
            (None, Some(value)) => RangeBound::Excluded(value),
            (None, None) => RangeBound::Unbounded,
        };
        for key in params.keys() {
            if !matches!(
                key.as_str(),
                "gte" | "gt" | "lte" | "lt" | "format" | "boost" | "time_zone" | "relation"
            ) {
                return Err(error(format!(
                    "unknown `range` option `{key}` on `{field}`"
                )));
            }
        }
        Ok(QueryAst::Range {
            field: field.clone(),
            lower,
            upper,
        })
    }

    /// Date math (`now-15m/m`) and `epoch_millis`/`epoch_second` become RFC 3339, which
    /// every datetime field accepts; other values pass through.
    fn range_value(
        &self,
        value: &Value,
        format: Option<&str>,
        round_up: bool,
    ) -> Result<String, DslError> {
        let to_rfc3339 = |instant: OffsetDateTime| {
            instant
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|format_error| error(format!("date out of range: {format_error}")))
        };
        match (value, format) {
            (Value::String(text), _)
                if text.starts_with("now") || text.contains("||") || date_only(text).is_some() =>
            {
                to_rfc3339(date_math(text, self.now, round_up)?)
            }
            (value, Some(format))
                if format.contains("epoch_millis") || format.contains("epoch_second") =>
            {
                let text = match value {
                    Value::Number(number) => number.to_string(),
                    Value::String(text) => text.clone(),
                    _ => String::new(),
                };
                let nanos_per_unit: i128 = if format.contains("epoch_millis") {
                    1_000_000
                } else {
                    1_000_000_000
                };
                // Whole numbers stay exact; fractions go through f64.
                let nanos = match text.parse::<i64>() {
                    Ok(whole) => Some(whole as i128 * nanos_per_unit),
                    Err(_) => text
                        .parse::<f64>()
                        .ok()
                        .map(|number| (number * nanos_per_unit as f64) as i128),
                }
                .ok_or_else(|| error(format!("`{value}` is not a number for format `{format}`")))?;
                to_rfc3339(
                    OffsetDateTime::from_unix_timestamp_nanos(nanos)
                        .map_err(|_| error(format!("`{value}` is out of range")))?,
                )
            }
            (value, _) => as_text("range", value),
        }
    }
}

fn escape_wildcard(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('*', "\\*")
        .replace('?', "\\?")
}

/// `2026-01-15`, as ES's default date format accepts it.
fn date_only(text: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format).ok()
}

/// The anchor of `<date>||+1d/d`: RFC 3339, a date, or a date and time without offset
/// (UTC, as in Elasticsearch).
fn date_anchor(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .or_else(|| OffsetDateTime::parse(text, &Iso8601::DEFAULT).ok())
        .or_else(|| {
            time::PrimitiveDateTime::parse(text, &Iso8601::DEFAULT)
                .ok()
                .map(time::PrimitiveDateTime::assume_utc)
        })
        .or_else(|| date_only(text).map(|date| date.midnight().assume_utc()))
}

/// `now`, `now-15m`, `now+1d/d`, `2026-01-15T13:00:00Z||+1d/d`: offsets in y, M, w, d, h,
/// H, m, s, then optional rounding down to the unit, or up to its last millisecond. A bare
/// date (`2026-01-15`) rounds like `||/d`: ES fills missing components up for `gt`/`lte`.
pub(crate) fn date_math(
    expression: &str,
    now: OffsetDateTime,
    round_up: bool,
) -> Result<OffsetDateTime, DslError> {
    let invalid = || {
        error(format!(
            "invalid date math `{expression}` (expected e.g. `now-15m`, `now/d` or `2026-01-15||+1d`)"
        ))
    };
    let (mut instant, mut rest) = if let Some(rest) = expression.strip_prefix("now") {
        (now, rest)
    } else if let Some((anchor, rest)) = expression.split_once("||") {
        (date_anchor(anchor).ok_or_else(invalid)?, rest)
    } else {
        let date = date_only(expression).ok_or_else(invalid)?;
        (date.midnight().assume_utc(), "/d")
    };
    while let Some(sign) = rest.chars().next().filter(|c| *c == '+' || *c == '-') {
        rest = &rest[1..];
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let amount: i64 = rest[..digits_end].parse().map_err(|_| invalid())?;
        let unit = rest[digits_end..].chars().next().ok_or_else(invalid)?;
        rest = &rest[digits_end + unit.len_utf8()..];
        let amount = if sign == '-' { -amount } else { amount };
        // Amounts come from the request: every step is checked, so `now+99999999999d`
        // is an error, never an overflow.
        let seconds_per_unit = match unit {
            's' => Some(1),
            'm' => Some(60),
            'h' | 'H' => Some(3_600),
            'd' => Some(86_400),
            'w' => Some(604_800),
            _ => None,
        };
        instant = match (unit, seconds_per_unit) {
            (_, Some(seconds_per_unit)) => amount
                .checked_mul(seconds_per_unit)
                .and_then(|seconds| instant.checked_add(Duration::seconds(seconds))),
            ('M', None) => add_months(instant, amount),
            ('y', None) => amount
                .checked_mul(12)
                .and_then(|months| add_months(instant, months)),
            _ => return Err(invalid()),
        }
        .ok_or_else(|| {
            error(format!(
                "date math `{expression}` is out of the supported range of dates"
            ))
        })?;
    }
    if let Some(unit) = rest.strip_prefix('/') {
        let date = instant.date();
        let start = match unit {
            "s" => instant.replace_nanosecond(0).map_err(|_| invalid())?,
            "m" => instant
                .replace_nanosecond(0)
                .and_then(|i| i.replace_second(0))
                .map_err(|_| invalid())?,
            "h" | "H" => instant
                .replace_nanosecond(0)
                .and_then(|i| i.replace_second(0))
                .and_then(|i| i.replace_minute(0))
                .map_err(|_| invalid())?,
            "d" => date.midnight().assume_utc(),
            "w" => date
                .checked_sub(Duration::days(
                    date.weekday().number_days_from_monday() as i64
                ))
                .ok_or_else(invalid)?
                .midnight()
                .assume_utc(),
            "M" => date
                .replace_day(1)
                .map_err(|_| invalid())?
                .midnight()
                .assume_utc(),
            "y" => date
                .replace_day(1)
                .and_then(|d| d.replace_month(time::Month::January))
                .map_err(|_| invalid())?
                .midnight()
                .assume_utc(),
            _ => return Err(invalid()),
        };
        instant = if round_up {
            let next = match unit {
                "s" => start.checked_add(Duration::seconds(1)),
                "m" => start.checked_add(Duration::minutes(1)),
                "h" | "H" => start.checked_add(Duration::hours(1)),
                "d" => start.checked_add(Duration::days(1)),
                "w" => start.checked_add(Duration::weeks(1)),
                "M" => add_months(start, 1),
                _ => add_months(start, 12),
            };
            next.and_then(|next| next.checked_sub(Duration::milliseconds(1)))
                .ok_or_else(invalid)?
        } else {
            start
        };
    } else if !rest.is_empty() {
        return Err(invalid());
    }
    Ok(instant)
}

fn add_months(instant: OffsetDateTime, months: i64) -> Option<OffsetDateTime> {
    let total = (instant.year() as i64 * 12 + (instant.month() as i64 - 1)).checked_add(months)?;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = time::Month::try_from((total.rem_euclid(12) + 1) as u8).ok()?;
    let day = instant.day().min(time::util::days_in_month(month, year));
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(instant.replace_date(date))
}

#[cfg(test)]
mod tests;
