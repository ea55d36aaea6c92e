//! `QueryAst` → tantivy `Query`, against one index's doc mapper.

use quarry_config::DOC_ID_FIELD_NAME;
use std::net::{IpAddr, Ipv6Addr};
use std::ops::Bound;

use quarry_common::doc_mapper::{
    binary_format_name, decode_binary, parse_date_time_str, DocMapper, LogDocId, MappedField,
    ResolvedField,
};
use quarry_config::{DateTimeInputFormat, LeafFieldType, TokenizerName};
use tantivy::json_utils::convert_to_fast_value_and_append_to_json_term;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, Occur, PhraseQuery, Query, RangeQuery,
    RegexQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::TokenizerManager;
use tantivy::{DateTime, Term};

use crate::datetime_range::DatetimeRangeQuery;
use crate::log_ids_query::LogIdsQuery;
use crate::query_ast::{BoolQuery, QueryAst, RangeBound};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query: {0}")]
pub struct InvalidQuery(pub String);

type BuildResult = Result<Box<dyn Query>, InvalidQuery>;

pub struct QueryBuilder<'a> {
    doc_mapper: &'a DocMapper,
    tokenizers: TokenizerManager,
}

impl<'a> QueryBuilder<'a> {
    pub fn new(doc_mapper: &'a DocMapper) -> QueryBuilder<'a> {
        QueryBuilder {
            doc_mapper,
            tokenizers: TokenizerManager::default(),
        }
    }

    pub fn build(&self, ast: &QueryAst) -> BuildResult {
        match ast {
            QueryAst::MatchAll => Ok(Box::new(AllQuery)),
            QueryAst::MatchNone => Ok(Box::new(EmptyQuery)),
            QueryAst::Bool(bool_query) => self.build_bool(bool_query),
            QueryAst::Term { field, value } => self.build_term(field, value),
            QueryAst::Phrase {
                field,
                phrase,
                slop,
            } => self.build_phrase(field, phrase, *slop),
            QueryAst::Range {
                field,
                lower,
                upper,
            } => self.build_range(field, lower, upper),
            QueryAst::Wildcard { field, pattern } => self.build_wildcard(field, pattern),
            QueryAst::Exists { field } => self.build_exists(field),
            QueryAst::TermSet { field, values } => self.build_term_set(field, values),
        }
    }

    fn resolve(&self, field: &str) -> Result<ResolvedField<'a>, InvalidQuery> {
        self.doc_mapper.resolve_field(field).map_err(InvalidQuery)
    }

    fn build_bool(&self, bool_query: &BoolQuery) -> BuildResult {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for clause in &bool_query.must {
            clauses.push((Occur::Must, self.build(clause)?));
        }
        for clause in &bool_query.filter {
            // Filters narrow the match set without contributing to the score.
            clauses.push((
                Occur::Must,
                Box::new(tantivy::query::ConstScoreQuery::new(
                    self.build(clause)?,
                    0.0,
                )),
            ));
        }
        let minimum_should_match = bool_query.minimum_should_match.unwrap_or(0);
        let has_required = !bool_query.must.is_empty() || !bool_query.filter.is_empty();
        if has_required && minimum_should_match > 0 && !bool_query.should.is_empty() {
            // Beside required clauses tantivy treats `should` as optional; a minimum makes
            // them a requirement of their own, as in Elasticsearch.
            let should: Vec<(Occur, Box<dyn Query>)> = bool_query
                .should
                .iter()
                .map(|clause| Ok((Occur::Should, self.build(clause)?)))
                .collect::<Result<_, InvalidQuery>>()?;
            clauses.push((
                Occur::Must,
                Box::new(BooleanQuery::with_minimum_required_clauses(
                    should,
                    minimum_should_match,
                )),
            ));
        } else {
            for clause in &bool_query.should {
                clauses.push((Occur::Should, self.build(clause)?));
            }
        }
        for clause in &bool_query.must_not {
            clauses.push((Occur::MustNot, self.build(clause)?));
        }
        let has_positive = !bool_query.must.is_empty()
            || !bool_query.filter.is_empty()
            || !bool_query.should.is_empty();
        if !has_positive {
            // A purely negative query means "everything except".
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        match bool_query.minimum_should_match {
            Some(minimum) if minimum > 1 && !has_required => Ok(Box::new(
                BooleanQuery::with_minimum_required_clauses(clauses, minimum),
            )),
            _ => Ok(Box::new(BooleanQuery::new(clauses))),
        }
    }

    fn tokenize(&self, tokenizer: TokenizerName, text: &str) -> Result<Vec<String>, InvalidQuery> {
        let mut analyzer = self.tokenizers.get(tokenizer.as_str()).ok_or_else(|| {
            InvalidQuery(format!(
                "tokenizer `{}` is not available",
                tokenizer.as_str()
            ))
        })?;
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while let Some(token) = stream.next() {
            tokens.push(token.text.clone());
        }
        Ok(tokens)
    }

    fn build_term(&self, field: &str, value: &str) -> BuildResult {
        if field == DOC_ID_FIELD_NAME {
            return self.build_term_set(field, std::slice::from_ref(&value.to_string()));
        }
        match self.resolve(field)? {
            ResolvedField::Mapped(mapped) => {
                if !mapped.mapping.indexed {
                    return Err(InvalidQuery(format!(
                        "field `{field}` is not indexed, so it cannot be searched"
                    )));
                }
                match mapped.leaf_type {
                    LeafFieldType::Text => {
                        let tokens = self.tokenize(mapped.mapping.effective_tokenizer(), value)?;
                        let terms: Vec<Term> = tokens
                            .iter()
                            .map(|token| Term::from_field_text(mapped.field, token))
                            .collect();
                        let has_positions = mapped.mapping.effective_record()
                            == quarry_config::IndexRecord::Position;
                        Ok(terms_query(terms, has_positions, 0))
                    }
                    _ => Ok(Box::new(TermQuery::new(
                        self.typed_term(mapped, value)?,
                        IndexRecordOption::Basic,
                    ))),
                }
            }
            ResolvedField::JsonPath {
                field: json_field,
                json_path,
                expand_dots,
                tokenizer,
                has_positions,
                ..
            } => {
                let base = Term::from_field_json_path(json_field, &json_path, expand_dots);
                let mut alternatives: Vec<Box<dyn Query>> = Vec::new();
                let tokens = self.tokenize(tokenizer, value)?;
                let text_terms: Vec<Term> = tokens
                    .iter()
                    .map(|token| {
                        let mut term = base.clone();
                        term.append_type_and_str(token);
                        term
                    })
                    .collect();
                if !text_terms.is_empty() {
                    alternatives.push(terms_query(text_terms, has_positions, 0));
                }
                // The same text may have been indexed as a number, a boolean or a date.
                if let Some(typed) =
                    convert_to_fast_value_and_append_to_json_term(&base, value, true)
                {
                    alternatives.push(Box::new(TermQuery::new(typed, IndexRecordOption::Basic)));
                }
                Ok(match alternatives.len() {
                    0 => Box::new(EmptyQuery),
                    1 => alternatives.remove(0),
                    _ => Box::new(BooleanQuery::union(alternatives)),
                })
            }
        }
    }

    /// The term of a non-text mapped field for `value`, or a 400 naming the type.
    fn typed_term(&self, mapped: &MappedField, value: &str) -> Result<Term, InvalidQuery> {
        let field = mapped.field;
        let invalid = |expected: &str| {
            InvalidQuery(format!(
                "`{value}` is not {expected}, the type of field `{}`",
                mapped.path
            ))
        };
        let value = value.trim();
        Ok(match mapped.leaf_type {
            LeafFieldType::Text => Term::from_field_text(field, value),
            LeafFieldType::U64 => Term::from_field_u64(
                field,
                value
                    .parse()
                    .map_err(|_| invalid("an unsigned integer (u64)"))?,
            ),
            LeafFieldType::I64 => Term::from_field_i64(
                field,
                value.parse().map_err(|_| invalid("an integer (i64)"))?,
            ),
            LeafFieldType::F64 => {
                Term::from_field_f64(field, value.parse().map_err(|_| invalid("a number (f64)"))?)
            }
            LeafFieldType::Bool => {
                Term::from_field_bool(field, value.parse().map_err(|_| invalid("a boolean"))?)
            }
            LeafFieldType::Datetime => Term::from_field_date_for_search(
                field,
                parse_query_date(mapped, value).ok_or_else(|| invalid("a datetime"))?,
            ),
            LeafFieldType::Ip => Term::from_field_ip_addr(
                field,
                parse_ip(value).ok_or_else(|| invalid("an IP address"))?,
            ),
            // Queries write bytes as documents do, not as raw text.
            LeafFieldType::Bytes => {
                let format = mapped.mapping.input_format.unwrap_or_default();
                let bytes = decode_binary(format, value)
                    .ok_or_else(|| invalid(binary_format_name(format)))?;
                Term::from_field_bytes(field, &bytes)
            }
            LeafFieldType::Json => {
                return Err(InvalidQuery(format!(
                    "field `{}` is a json field: query a path inside it",
                    mapped.path
                )))
            }
        })
    }

    fn build_phrase(&self, field: &str, phrase: &str, slop: u32) -> BuildResult {
        match self.resolve(field)? {
            ResolvedField::Mapped(mapped) if mapped.leaf_type == LeafFieldType::Text => {
                let has_positions =
                    mapped.mapping.effective_record() == quarry_config::IndexRecord::Position;
                let tokens = self.tokenize(mapped.mapping.effective_tokenizer(), phrase)?;
                if tokens.len() > 1 && !has_positions {
                    return Err(InvalidQuery(format!(
                        "field `{field}` is not indexed with positions (`record: position`), so it cannot answer phrase queries"
                    )));
                }
                let terms = tokens
                    .iter()
                    .map(|token| Term::from_field_text(mapped.field, token))
                    .collect();
                Ok(terms_query(terms, true, slop))
            }
            ResolvedField::Mapped(_) => self.build_term(field, phrase),
            ResolvedField::JsonPath { .. } => self.build_term(field, phrase),
        }
    }

    fn build_range(&self, field: &str, lower: &RangeBound, upper: &RangeBound) -> BuildResult {
        if matches!(
            (lower, upper),
            (RangeBound::Unbounded, RangeBound::Unbounded)
        ) {
            // tantivy's range panics without any bound; as in Elasticsearch, it means
            // "has a value".
            return self.build_exists(field);
        }
        let to_bound = |bound: &RangeBound,
                        make: &dyn Fn(&str) -> Result<Term, InvalidQuery>|
         -> Result<Bound<Term>, InvalidQuery> {
            Ok(match bound {
                RangeBound::Unbounded => Bound::Unbounded,
                RangeBound::Included(value) => Bound::Included(make(value)?),
                RangeBound::Excluded(value) => Bound::Excluded(make(value)?),
            })
        };
        match self.resolve(field)? {
            ResolvedField::Mapped(mapped) => {
                if !mapped.mapping.indexed && !mapped.mapping.fast {
                    return Err(InvalidQuery(format!("field `{field}` is neither indexed nor fast, so it cannot be range-queried")));
                }
                if mapped.leaf_type == LeafFieldType::Datetime {
                    // Datetimes compare at full precision, not the second-precision of the index.
                    let date = |bound: &RangeBound| -> Result<Bound<DateTime>, InvalidQuery> {
                        let parse = |value: &str| {
                            parse_query_date(mapped, value).ok_or_else(|| {
                                InvalidQuery(format!(
                                    "`{value}` is not a datetime, the type of field `{field}`"
                                ))
                            })
                        };
                        Ok(match bound {
                            RangeBound::Unbounded => Bound::Unbounded,
                            RangeBound::Included(value) => Bound::Included(parse(value)?),
                            RangeBound::Excluded(value) => Bound::Excluded(parse(value)?),
                        })
                    };
                    let (lower, upper) = (date(lower)?, date(upper)?);
                    if mapped.mapping.fast {
                        return Ok(Box::new(DatetimeRangeQuery::new(
                            mapped.field,
                            &mapped.path,
                            mapped.mapping.indexed,
                            lower,
                            upper,
                        )));
                    }
                    let term = |date| Term::from_field_date(mapped.field, date);
                    return Ok(Box::new(RangeQuery::new(lower.map(term), upper.map(term))));
                }
                let make = |value: &str| self.typed_term(mapped, value);
                Ok(Box::new(RangeQuery::new(
                    to_bound(lower, &make)?,
                    to_bound(upper, &make)?,
                )))
            }
            ResolvedField::JsonPath {
                field: json_field,
                json_path,
                expand_dots,
                ..
            } => {
                let base = Term::from_field_json_path(json_field, &json_path, expand_dots);
                let make = |value: &str| {
                    convert_to_fast_value_and_append_to_json_term(&base, value, false)
                        .or_else(|| {
                            let mut term = base.clone();
                            term.append_type_and_str(value);
                            Some(term)
                        })
                        .ok_or_else(|| InvalidQuery(format!("invalid range bound `{value}`")))
                };
                Ok(Box::new(RangeQuery::new(
                    to_bound(lower, &make)?,
                    to_bound(upper, &make)?,
                )))
            }
        }
    }

    fn build_wildcard(&self, field: &str, pattern: &str) -> BuildResult {
        match self.resolve(field)? {
            ResolvedField::Mapped(mapped) if mapped.leaf_type == LeafFieldType::Text => {
                let tokenizer = mapped.mapping.effective_tokenizer();
                // Tokenizers that lowercase at indexing need a lowercase pattern to match.
                let pattern = match tokenizer {
                    TokenizerName::Default | TokenizerName::EnStem => pattern.to_lowercase(),
                    TokenizerName::Raw | TokenizerName::Whitespace => pattern.to_string(),
                };
                let regex = wildcard_to_regex(&pattern);
                let query = RegexQuery::from_pattern(&regex, mapped.field).map_err(|error| {
                    InvalidQuery(format!("wildcard `{pattern}` on field `{field}`: {error}"))
                })?;
                Ok(Box::new(query))
            }
            ResolvedField::Mapped(mapped) => Err(InvalidQuery(format!(
                "wildcards apply to text fields; `{field}` is a `{}`",
                mapped.leaf_type.name()
            ))),
            ResolvedField::JsonPath { .. } => Err(InvalidQuery(format!(
                "wildcard queries on paths inside json fields (`{field}`) are not supported yet"
            ))),
        }
    }

    fn build_exists(&self, field: &str) -> BuildResult {
        match self.resolve(field)? {
            ResolvedField::Mapped(mapped) if mapped.mapping.fast => {
                Ok(Box::new(ExistsQuery::new(mapped.path.clone(), false)))
            }
            // Without a column, every term of the field is a witness: a range over all of them.
            ResolvedField::Mapped(mapped)
                if mapped.leaf_type == LeafFieldType::Text && mapped.mapping.indexed =>
            {
                Ok(Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_text(mapped.field, "")),
                    Bound::Unbounded,
                )))
            }
            ResolvedField::Mapped(_) => Err(InvalidQuery(format!(
                "`{field}:*` needs field `{field}` to be `fast: true`"
            ))),
            ResolvedField::JsonPath {
                field_name,
                json_path,
                fast: true,
                ..
            } => {
                let path = if json_path.is_empty() {
                    field_name
                } else {
                    format!("{field_name}.{json_path}")
                };
                Ok(Box::new(ExistsQuery::new(path, true)))
            }
            ResolvedField::JsonPath { .. } => Err(InvalidQuery(format!(
                "`{field}:*` needs its json field to be `fast: true`"
            ))),
        }
    }

    fn build_term_set(&self, field: &str, values: &[String]) -> BuildResult {
        // Ids are matched whole, as sent: the client's own, stored with the document, or
        // the log id Quarry gave a document sent without one.
        if field == DOC_ID_FIELD_NAME {
            let id_field = self.doc_mapper.doc_id_field();
            let terms = values
                .iter()
                .map(|value| Term::from_field_text(id_field, value));
            let given: Box<dyn Query> = Box::new(TermSetQuery::new(terms));
            let log_ids: Vec<LogDocId> = values
                .iter()
                .filter_map(|value| LogDocId::decode(value))
                .collect();
            if log_ids.is_empty() {
                return Ok(given);
            }
            return Ok(Box::new(BooleanQuery::union(vec![
                given,
                Box::new(LogIdsQuery::new(log_ids)),
            ])));
        }
        match self.resolve(field)? {
            ResolvedField::Mapped(mapped) => {
                let mut terms = Vec::with_capacity(values.len());
                for value in values {
                    if mapped.leaf_type == LeafFieldType::Text {
                        for token in self.tokenize(mapped.mapping.effective_tokenizer(), value)? {
                            terms.push(Term::from_field_text(mapped.field, &token));
                        }
                    } else {
                        terms.push(self.typed_term(mapped, value)?);
                    }
                }
                Ok(Box::new(TermSetQuery::new(terms)))
            }
            ResolvedField::JsonPath { .. } => {
                let clauses = values
                    .iter()
                    .map(|value| self.build_term(field, value))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Box::new(BooleanQuery::union(clauses)))
            }
        }
    }
}

/// All tokens must match: as a phrase when positions exist, else as a conjunction.
fn terms_query(mut terms: Vec<Term>, has_positions: bool, slop: u32) -> Box<dyn Query> {
    match terms.len() {
        0 => Box::new(EmptyQuery),
        1 => Box::new(TermQuery::new(
            terms.remove(0),
            IndexRecordOption::WithFreqs,
        )),
        _ if has_positions => {
            let mut phrase = PhraseQuery::new(terms);
            phrase.set_slop(slop);
            Box::new(phrase)
        }
        _ => Box::new(BooleanQuery::new(
            terms
                .into_iter()
                .map(|term| {
                    (
                        Occur::Must,
                        Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>,
                    )
                })
                .collect(),
        )),
    }
}

fn parse_ip(value: &str) -> Option<Ipv6Addr> {
    match value.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => Some(v6),
    }
}

/// Query dates accept RFC 3339 first (the time window is sent that way), then the field's
/// input formats, then unix timestamps.
fn parse_query_date(mapped: &MappedField, value: &str) -> Option<DateTime> {
    let mut formats = vec![DateTimeInputFormat::Rfc3339];
    formats.extend(mapped.mapping.effective_input_formats());
    formats.push(DateTimeInputFormat::UnixTimestamp);
    parse_date_time_str(value, &formats)
}

/// `*` → `.*`, `?` → `.`, everything else literal; `\*` and `\?` stay literal.
fn wildcard_to_regex(pattern: &str) -> String {
    let mut regex = String::with_capacity(pattern.len() * 2);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(escaped) = chars.next() {
                    regex.push_str(&regex_escape(escaped));
                }
            }
            '*' => regex.push_str(".*"),
            '?' => regex.push('.'),
            other => regex.push_str(&regex_escape(other)),
        }
    }
    regex
}

fn regex_escape(c: char) -> String {
    if "\\.+*?()|[]{}^$#&-~\"@<>".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

/// A window `[start, end)` of the timestamp field in nanoseconds; `None` sides are open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimestampWindow {
    pub start_nanos: Option<i64>,
    pub end_nanos: Option<i64>,
}

impl TimestampWindow {
    fn intersect(self, other: TimestampWindow) -> TimestampWindow {
        let max = |a: Option<i64>, b: Option<i64>| a.max(b).or(a).or(b);
        let min = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        TimestampWindow {
            start_nanos: max(self.start_nanos, other.start_nanos),
            end_nanos: min(self.end_nanos, other.end_nanos),
        }
    }
}

/// A window on the index's timestamp field that every document `ast` matches lies in: the
/// intersection of the windows among its required clauses, or `None` when it requires
/// none. Unlike `as_timestamp_window`, the rest of the query may ask anything.
pub fn required_timestamp_window(
    ast: &QueryAst,
    doc_mapper: &DocMapper,
) -> Option<TimestampWindow> {
    match ast {
        QueryAst::Range { .. } => as_timestamp_window(ast, doc_mapper),
        QueryAst::Bool(bool_query) => bool_query
            .must
            .iter()
            .chain(&bool_query.filter)
            .filter_map(|clause| required_timestamp_window(clause, doc_mapper))
            .reduce(TimestampWindow::intersect),
        _ => None,
    }
}

/// `ast` as nothing but a window on the index's timestamp field (match-all, ranges on
/// that field, and conjunctions of them), or `None` when it asks anything else. This is
/// the query of log-volume histograms, which per-minute counts can answer.
pub fn as_timestamp_window(ast: &QueryAst, doc_mapper: &DocMapper) -> Option<TimestampWindow> {
    let timestamp_field = doc_mapper.timestamp_field()?;
    match ast {
        QueryAst::MatchAll => Some(TimestampWindow::default()),
        QueryAst::Range {
            field,
            lower,
            upper,
        } if *field == timestamp_field.path => {
            let nanos = |value: &str| {
                parse_query_date(timestamp_field, value).map(DateTime::into_timestamp_nanos)
            };
            let start_nanos = match lower {
                RangeBound::Unbounded => None,
                RangeBound::Included(value) => Some(nanos(value)?),
                RangeBound::Excluded(value) => Some(nanos(value)?.saturating_add(1)),
            };
            let end_nanos = match upper {
                RangeBound::Unbounded => None,
                RangeBound::Included(value) => Some(nanos(value)?.saturating_add(1)),
                RangeBound::Excluded(value) => Some(nanos(value)?),
            };
            Some(TimestampWindow {
                start_nanos,
                end_nanos,
            })
        }
        QueryAst::Bool(bool_query)
            if bool_query.should.is_empty() && bool_query.must_not.is_empty() =>
        {
            let mut window = TimestampWindow::default();
            for clause in bool_query.must.iter().chain(&bool_query.filter) {
                window = window.intersect(as_timestamp_window(clause, doc_mapper)?);
            }
            Some(window)
        }
        _ => None,
    }
}

/// The field a request's time window filters on, as a range clause.
/// `ast` restricted to `[start, end)` seconds of the index's timestamp field.
pub fn within_time_window(
    ast: QueryAst,
    doc_mapper: &DocMapper,
    index_id: &str,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<QueryAst, String> {
    if start.is_none() && end.is_none() {
        return Ok(ast);
    }
    let timestamp_field = doc_mapper.timestamp_field().ok_or_else(|| {
        format!(
            "index `{index_id}` has no timestamp field, so start_timestamp/end_timestamp cannot apply"
        )
    })?;
    Ok(
        match time_window_clause(&timestamp_field.path, start, end) {
            Some(window) => ast.filtered(window),
            None => ast,
        },
    )
}

pub fn time_window_clause(
    timestamp_field: &str,
    start: Option<i64>,
    end: Option<i64>,
) -> Option<QueryAst> {
    if start.is_none() && end.is_none() {
        return None;
    }
    // Timestamps are nanoseconds in an i64: seconds past ±292 years from 1970 overflow, and
    // no document lies beyond them, so clamping keeps the window's meaning.
    let rfc3339 = |secs: i64| {
        let secs = secs.clamp(i64::MIN / 1_000_000_000, i64::MAX / 1_000_000_000);
        quarry_common::doc_mapper::format_rfc3339(DateTime::from_timestamp_secs(secs))
    };
    Some(QueryAst::Range {
        field: timestamp_field.to_string(),
        lower: start.map_or(RangeBound::Unbounded, |secs| {
            RangeBound::Included(rfc3339(secs))
        }),
        upper: end.map_or(RangeBound::Unbounded, |secs| {
            RangeBound::Excluded(rfc3339(secs))
        }),
    })
}

#[cfg(test)]
mod time_window_tests {
    use super::*;

    fn mapper() -> DocMapper {
        let config = quarry_config::IndexConfig::parse(
            b"index_id: windows\ndoc_mapping:\n  field_mappings:\n    - {name: ts, type: datetime, fast: true}\n    - {name: body, type: text}\n  timestamp_field: ts",
            quarry_config::ConfigFormat::Yaml,
        )
        .unwrap();
        DocMapper::new(&config)
    }

    #[test]
    fn a_range_without_bounds_is_an_exists_query() {
        let mapper = mapper();
        for field in ["ts", "body"] {
            let ast = QueryAst::Range {
                field: field.to_string(),
                lower: RangeBound::Unbounded,
                upper: RangeBound::Unbounded,
            };
            let built = QueryBuilder::new(&mapper).build(&ast);
            let exists = QueryBuilder::new(&mapper).build(&QueryAst::Exists {
                field: field.to_string(),
            });
            assert_eq!(format!("{built:?}"), format!("{exists:?}"), "{field}");
        }
    }

    #[test]
    fn a_query_that_is_only_a_time_window_is_recognised() {
        let mapper = mapper();
        let window = |ast: &QueryAst| as_timestamp_window(ast, &mapper);
        assert_eq!(
            window(&QueryAst::MatchAll),
            Some(TimestampWindow::default())
        );
        let windowed =
            within_time_window(QueryAst::MatchAll, &mapper, "windows", Some(60), Some(120))
                .unwrap()
                .filtered(QueryAst::Range {
                    field: "ts".to_string(),
                    lower: RangeBound::Excluded("1970-01-01T00:01:30Z".to_string()),
                    upper: RangeBound::Included("1970-01-01T00:03:00Z".to_string()),
                });
        assert_eq!(
            window(&windowed),
            Some(TimestampWindow {
                start_nanos: Some(90_000_000_001),
                end_nanos: Some(120_000_000_000),
            })
        );
        let term = QueryAst::Term {
            field: "body".to_string(),
            value: "failed".to_string(),
        };
        assert_eq!(window(&term.clone().filtered(QueryAst::MatchAll)), None);
        assert_eq!(
            window(&QueryAst::Range {
                field: "body".to_string(),
                lower: RangeBound::Unbounded,
                upper: RangeBound::Unbounded
            }),
            None
        );
    }

    #[test]
    fn windows_at_the_ends_of_i64_clamp_instead_of_overflowing() {
        let window = time_window_clause("ts", Some(i64::MIN), Some(i64::MAX));
        let Some(QueryAst::Range { lower, upper, .. }) = window else {
            panic!("a window with both ends is a range: {window:?}");
        };
        assert!(
            matches!(&lower, RangeBound::Included(text) if text.starts_with("1677-")),
            "{lower:?}"
        );
        assert!(
            matches!(&upper, RangeBound::Excluded(text) if text.starts_with("2262-")),
            "{upper:?}"
        );
    }
}
