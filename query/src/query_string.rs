//! The Lucene-style query language of the native search API.
//!
//! ```text
//! query   := or EOF
//! or      := and (OR and)*
//! and     := clause ((AND)? clause)*          juxtaposition means AND
//! clause  := (NOT | - | ! | +) clause | primary
//! primary := ( or ) | field ':' value | value
//! value   := "phrase"[~slop] | [a TO b] | {a TO b} | >=x | >x | <=x | <x
//!          | IN [a b c] | ( or ) | * | word (with * and ? wildcards)
//! ```

use crate::query_ast::{QueryAst, RangeBound, MAX_QUERY_DEPTH};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query syntax error at position {position}: {message}")]
pub struct QueryParseError {
    /// 0-based character offset in the query string.
    pub position: usize,
    pub message: String,
}

/// Parses a query string. Terms without a field search `default_fields`.
pub fn parse_query_string(
    query: &str,
    default_fields: &[String],
) -> Result<QueryAst, QueryParseError> {
    parse_query_string_with(query, default_fields, DefaultOperator::And)
}

/// How juxtaposed clauses (`a b`) combine: AND in the native API, as log searches expect;
/// OR in Elasticsearch's `query_string` unless told otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultOperator {
    And,
    Or,
}

pub fn parse_query_string_with(
    query: &str,
    default_fields: &[String],
    default_operator: DefaultOperator,
) -> Result<QueryAst, QueryParseError> {
    let mut parser = Parser {
        chars: query.chars().collect(),
        position: 0,
        depth: 0,
        default_fields,
        default_operator,
    };
    parser.skip_whitespace();
    if parser.at_end() {
        return Ok(QueryAst::MatchAll);
    }
    let ast = parser.parse_or(None)?;
    parser.skip_whitespace();
    if !parser.at_end() {
        return Err(parser.error(format!("unexpected `{}`", parser.chars[parser.position])));
    }
    Ok(ast)
}

struct Parser<'a> {
    chars: Vec<char>,
    position: usize,
    /// Groups open around the position: parsing recurses once per group.
    depth: usize,
    default_fields: &'a [String],
    default_operator: DefaultOperator,
}

/// Characters that end a bare word (unless escaped with `\`).
fn is_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"' | ':' | '[' | ']' | '{' | '}' | '^' | '~')
}

enum Sign {
    Must,
    MustNot,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.position >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn error(&self, message: impl Into<String>) -> QueryParseError {
        QueryParseError {
            position: self.position,
            message: message.into(),
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.position += 1;
        }
    }

    /// Whether the next word is the keyword (followed by whitespace, `(` or `"`).
    fn at_keyword(&self, keyword: &str) -> bool {
        let end = self.position + keyword.len();
        if end > self.chars.len() {
            return false;
        }
        let word: String = self.chars[self.position..end].iter().collect();
        word == keyword
            && self
                .chars
                .get(end)
                .is_none_or(|c| c.is_whitespace() || *c == '(' || *c == '"')
    }

    fn eat_operator(&mut self, keyword: &str, symbol: &str) -> bool {
        self.skip_whitespace();
        if self.at_keyword(keyword) {
            self.position += keyword.len();
            return true;
        }
        let end = self.position + symbol.len();
        if end <= self.chars.len()
            && self.chars[self.position..end].iter().collect::<String>() == symbol
        {
            self.position = end;
            return true;
        }
        false
    }

    fn parse_or(&mut self, field: Option<&str>) -> Result<QueryAst, QueryParseError> {
        let mut clauses = vec![self.parse_and(field)?];
        loop {
            if self.eat_operator("OR", "||") {
                clauses.push(self.parse_and(field)?);
                continue;
            }
            self.skip_whitespace();
            let implicit_or = self.default_operator == DefaultOperator::Or
                && !self.at_end()
                && self.peek() != Some(')');
            if !implicit_or {
                break;
            }
            clauses.push(self.parse_and(field)?);
        }
        if self.default_operator == DefaultOperator::Or {
            // Lucene semantics: `a -b` is "a, and not b", not "a or not b".
            let (negatives, positives): (Vec<QueryAst>, Vec<QueryAst>) =
                clauses.into_iter().partition(is_pure_negation);
            if !negatives.is_empty() {
                let must_not = negatives
                    .into_iter()
                    .flat_map(|negation| match negation {
                        QueryAst::Bool(bool_query) => bool_query.must_not,
                        other => vec![other],
                    })
                    .collect();
                return Ok(QueryAst::Bool(crate::query_ast::BoolQuery {
                    should: positives,
                    must_not,
                    ..Default::default()
                }));
            }
            return Ok(QueryAst::or(positives));
        }
        Ok(QueryAst::or(clauses))
    }

    fn parse_and(&mut self, field: Option<&str>) -> Result<QueryAst, QueryParseError> {
        let mut must = Vec::new();
        let mut must_not = Vec::new();
        loop {
            self.skip_whitespace();
            let (sign, clause) = self.parse_clause(field)?;
            match sign {
                Sign::Must => must.push(clause),
                Sign::MustNot => must_not.push(clause),
            }
            self.skip_whitespace();
            if self.eat_operator("AND", "&&") {
                continue;
            }
            self.skip_whitespace();
            if self.default_operator == DefaultOperator::Or
                || self.at_end()
                || self.peek() == Some(')')
                || self.at_keyword("OR")
                || self.at_operator_symbol("||")
            {
                break;
            }
        }
        if must_not.is_empty() {
            return Ok(QueryAst::and(must));
        }
        Ok(QueryAst::Bool(crate::query_ast::BoolQuery {
            must,
            must_not,
            ..Default::default()
        }))
    }

    fn at_operator_symbol(&self, symbol: &str) -> bool {
        let end = self.position + symbol.len();
        end <= self.chars.len()
            && self.chars[self.position..end].iter().collect::<String>() == symbol
    }

    /// Prefix operators are read in a loop, not by recursion: a request of a million `-`
    /// must not take the stack.
    fn parse_clause(&mut self, field: Option<&str>) -> Result<(Sign, QueryAst), QueryParseError> {
        let mut sign = Sign::Must;
        loop {
            self.skip_whitespace();
            if self.at_keyword("NOT") {
                self.position += 3;
                sign = flip(sign);
                continue;
            }
            match self.peek() {
                Some('-') | Some('!') => {
                    self.position += 1;
                    sign = flip(sign);
                }
                Some('+') => self.position += 1,
                Some(_) => return Ok((sign, self.parse_primary(field)?)),
                None => {
                    return Err(
                        self.error("expected a term, a phrase or `(`, found the end of the query")
                    )
                }
            }
        }
    }

    fn parse_primary(&mut self, field: Option<&str>) -> Result<QueryAst, QueryParseError> {
        if self.peek() == Some('(') {
            return self.parse_group(field);
        }
        if field.is_none() {
            if let Some(name) = self.try_field_name() {
                self.skip_whitespace();
                return self.parse_value(Some(&name));
            }
        }
        self.parse_value(field)
    }

    fn parse_group(&mut self, field: Option<&str>) -> Result<QueryAst, QueryParseError> {
        let open = self.position;
        if self.depth >= MAX_QUERY_DEPTH {
            return Err(self.error(format!(
                "parentheses nested deeper than {MAX_QUERY_DEPTH} levels"
            )));
        }
        self.position += 1;
        self.skip_whitespace();
        if self.peek() == Some(')') {
            return Err(self.error("empty parentheses"));
        }
        self.depth += 1;
        let inner = self.parse_or(field);
        self.depth -= 1;
        let inner = inner?;
        self.skip_whitespace();
        if self.peek() != Some(')') {
            return Err(QueryParseError {
                position: self.position,
                message: format!("expected `)` to close the `(` at position {open}"),
            });
        }
        self.position += 1;
        Ok(inner)
    }

    /// A field name is a bare word directly followed by an unescaped `:`.
    fn try_field_name(&mut self) -> Option<String> {
        let start = self.position;
        let mut name = String::new();
        let mut index = start;
        while let Some(&c) = self.chars.get(index) {
            if c == '\\' {
                let escaped = *self.chars.get(index + 1)?;
                name.push(escaped);
                index += 2;
                continue;
            }
            if is_special(c) {
                break;
            }
            name.push(c);
            index += 1;
        }
        if !name.is_empty() && self.chars.get(index) == Some(&':') && !name.contains('*') {
            self.position = index + 1;
            Some(name)
        } else {
            None
        }
    }

    fn fields_for(&self, field: Option<&str>) -> Result<Vec<String>, QueryParseError> {
        match field {
            Some(field) => Ok(vec![field.to_string()]),
            None if self.default_fields.is_empty() => Err(self.error(
                "a term has no field and the index has no `search_settings.default_search_fields`: write `field:value`",
            )),
            None => Ok(self.default_fields.to_vec()),
        }
    }

    /// Builds one clause per searched field, OR-ed together.
    fn on_fields(
        &self,
        field: Option<&str>,
        make: impl Fn(String) -> QueryAst,
    ) -> Result<QueryAst, QueryParseError> {
        Ok(QueryAst::or(
            self.fields_for(field)?.into_iter().map(make).collect(),
        ))
    }

    fn parse_value(&mut self, field: Option<&str>) -> Result<QueryAst, QueryParseError> {
        match self.peek() {
            Some('(') if field.is_some() => self.parse_group(field),
            Some('"') => {
                let phrase = self.parse_quoted()?;
                let slop = self.parse_slop()?;
                self.on_fields(field, |field| QueryAst::Phrase {
                    field,
                    phrase: phrase.clone(),
                    slop,
                })
            }
            Some('[') | Some('{') => {
                let (lower, upper) = self.parse_range()?;
                self.on_fields(field, |field| QueryAst::Range {
                    field,
                    lower: lower.clone(),
                    upper: upper.clone(),
                })
            }
            Some('>') | Some('<') => {
                let (lower, upper) = self.parse_comparison()?;
                self.on_fields(field, |field| QueryAst::Range {
                    field,
                    lower: lower.clone(),
                    upper: upper.clone(),
                })
            }
            Some(')') => Err(self.error("unexpected `)`")),
            Some(':') => Err(self.error("unexpected `:` (escape it as `\\:` to search for it)")),
            Some(c) if matches!(c, ']' | '}' | '^' | '~') => {
                Err(self.error(format!("unexpected `{c}`")))
            }
            None => Err(self.error("expected a value, found the end of the query")),
            Some(_) => {
                if field.is_some() && self.at_keyword("IN") {
                    self.position += 2;
                    self.skip_whitespace();
                    let values = self.parse_set()?;
                    return self.on_fields(field, |field| QueryAst::TermSet {
                        field,
                        values: values.clone(),
                    });
                }
                let start = self.position;
                let (word, has_wildcard) = self.parse_word()?;
                if word == "*" && has_wildcard {
                    return Ok(match field {
                        Some(field) => QueryAst::Exists {
                            field: field.to_string(),
                        },
                        None => QueryAst::MatchAll,
                    });
                }
                if matches!(word.as_str(), "AND" | "OR") {
                    return Err(QueryParseError {
                        position: start,
                        message: format!("`{word}` needs a clause on each side"),
                    });
                }
                if has_wildcard {
                    self.on_fields(field, |field| QueryAst::Wildcard {
                        field,
                        pattern: word.clone(),
                    })
                } else {
                    self.on_fields(field, |field| QueryAst::Term {
                        field,
                        value: word.clone(),
                    })
                }
            }
        }
    }

    /// A bare word; returns it unescaped, and whether it has unescaped `*`/`?`.
    /// Escaped wildcards are kept escaped so the wildcard compiler can tell them apart.
    fn parse_word(&mut self) -> Result<(String, bool), QueryParseError> {
        let mut word = String::new();
        let mut has_wildcard = false;
        while let Some(c) = self.peek() {
            if c == '\\' {
                let Some(&escaped) = self.chars.get(self.position + 1) else {
                    return Err(self.error("`\\` at the end of the query escapes nothing"));
                };
                if matches!(escaped, '*' | '?' | '\\') {
                    word.push('\\');
                }
                word.push(escaped);
                self.position += 2;
                continue;
            }
            if is_special(c) {
                break;
            }
            if c == '*' || c == '?' {
                has_wildcard = true;
            }
            word.push(c);
            self.position += 1;
        }
        if word.is_empty() {
            return Err(self.error("expected a value"));
        }
        if !has_wildcard {
            word = word
                .replace("\\\\", "\\")
                .replace("\\*", "*")
                .replace("\\?", "?");
        }
        Ok((word, has_wildcard))
    }

    fn parse_quoted(&mut self) -> Result<String, QueryParseError> {
        let open = self.position;
        self.position += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(QueryParseError {
                        position: open,
                        message: "unterminated phrase: missing closing `\"`".to_string(),
                    })
                }
                Some('"') => {
                    self.position += 1;
                    return Ok(text);
                }
                Some('\\') => {
                    let Some(&escaped) = self.chars.get(self.position + 1) else {
                        return Err(QueryParseError {
                            position: open,
                            message: "unterminated phrase: missing closing `\"`".to_string(),
                        });
                    };
                    text.push(escaped);
                    self.position += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.position += 1;
                }
            }
        }
    }

    fn parse_slop(&mut self) -> Result<u32, QueryParseError> {
        if self.peek() != Some('~') {
            return Ok(0);
        }
        self.position += 1;
        let start = self.position;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.position += 1;
        }
        let digits: String = self.chars[start..self.position].iter().collect();
        digits.parse().map_err(|_| QueryParseError {
            position: start,
            message: "expected a number of positions after `~`".to_string(),
        })
    }

    fn parse_bound_value(&mut self) -> Result<String, QueryParseError> {
        self.skip_whitespace();
        if self.peek() == Some('"') {
            return self.parse_quoted();
        }
        let mut value = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ']' | '}' | ')') {
                break;
            }
            if c == '\\' {
                let Some(&escaped) = self.chars.get(self.position + 1) else {
                    return Err(self.error("`\\` at the end of the query escapes nothing"));
                };
                value.push(escaped);
                self.position += 2;
                continue;
            }
            value.push(c);
            self.position += 1;
        }
        if value.is_empty() {
            return Err(self.error("expected a range bound"));
        }
        Ok(value)
    }

    fn parse_range(&mut self) -> Result<(RangeBound, RangeBound), QueryParseError> {
        let open = self.position;
        let inclusive_lower = self.peek() == Some('[');
        self.position += 1;
        let lower = self.parse_bound_value()?;
        self.skip_whitespace();
        if !self.at_keyword("TO") {
            return Err(self.error("expected `TO` in the range"));
        }
        self.position += 2;
        let upper = self.parse_bound_value()?;
        self.skip_whitespace();
        let inclusive_upper = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            _ => {
                return Err(QueryParseError {
                    position: self.position,
                    message: format!(
                        "expected `]` or `}}` to close the range opened at position {open}"
                    ),
                })
            }
        };
        self.position += 1;
        let bound = |value: String, inclusive: bool| match (value.as_str(), inclusive) {
            ("*", _) => RangeBound::Unbounded,
            (_, true) => RangeBound::Included(value),
            (_, false) => RangeBound::Excluded(value),
        };
        Ok((bound(lower, inclusive_lower), bound(upper, inclusive_upper)))
    }

    fn parse_comparison(&mut self) -> Result<(RangeBound, RangeBound), QueryParseError> {
        let greater = self.peek() == Some('>');
        self.position += 1;
        let inclusive = self.peek() == Some('=');
        if inclusive {
            self.position += 1;
        }
        let value = self.parse_bound_value()?;
        let bound = if inclusive {
            RangeBound::Included(value)
        } else {
            RangeBound::Excluded(value)
        };
        Ok(if greater {
            (bound, RangeBound::Unbounded)
        } else {
            (RangeBound::Unbounded, bound)
        })
    }

    fn parse_set(&mut self) -> Result<Vec<String>, QueryParseError> {
        if self.peek() != Some('[') {
            return Err(self.error("expected `[` after `IN`"));
        }
        self.position += 1;
        let mut values = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(']') => {
                    self.position += 1;
                    break;
                }
                None => return Err(self.error("expected `]` to close the set")),
                _ => values.push(self.parse_bound_value()?),
            }
        }
        if values.is_empty() {
            return Err(self.error("an `IN` set needs at least one value"));
        }
        Ok(values)
    }
}

fn is_pure_negation(clause: &QueryAst) -> bool {
    matches!(clause, QueryAst::Bool(bool_query)
        if bool_query.must.is_empty() && bool_query.should.is_empty() && bool_query.filter.is_empty() && !bool_query.must_not.is_empty())
}

fn flip(sign: Sign) -> Sign {
    match sign {
        Sign::Must => Sign::MustNot,
        Sign::MustNot => Sign::Must,
    }
}

#[cfg(test)]
mod tests;
