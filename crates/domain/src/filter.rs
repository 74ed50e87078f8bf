//! The `filter` query language of `search_tasks` ([PM-C], [SDK3]): a tokenizer and a recursive-descent parser
//! into a small syntax tree, without I/O. The storage layer compiles the tree to SQL with bound values.
//!
//! ```text
//! expr      := and_expr ( "or" and_expr )*
//! and_expr  := primary ( "and" primary )*
//! primary   := "(" expr ")" | condition
//! condition := int_field ( "=" INT | "in" "(" INT ( "," INT )* ")" )
//!            | "name" ( "=" | "has" ) STRING
//!            | date_field ( "=" | "!=" | ">" | "<" | ">=" | "<=" ) STRING      -- 'DD.MM.YYYY' or 'YYYY-MM-DD'
//! int_field  := "id" | "project" | "parent"
//! date_field := "dateadd" | "datestart" | "dateend" | "dateclose"
//!             | "date_added" | "date_start" | "date_end" | "date_closed"
//! ```
//!
//! Keywords and fields are lowercase (as documented); strings are single-quoted, with `\'`, `\\` or `''`
//! for a quote or backslash inside. Input longer than [`MAX_LEN`] bytes or nested deeper than [`MAX_DEPTH`]
//! parentheses is refused, so parsing is bounded in time and stack.

use std::fmt;

use crate::dates::parse_date;

/// The longest filter accepted, in bytes.
pub const MAX_LEN: usize = 4096;
/// The deepest parenthesis nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// The largest integer accepted (ids are below 2^53).
pub const MAX_INT: i64 = 1 << 53;

/// A parsed filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// Every item holds (two or more items).
    And(Vec<Expr>),
    /// Some item holds (two or more items).
    Or(Vec<Expr>),
    Cond(Condition),
}

/// One comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `field = N` (one value) or `field in (N, M, ...)`.
    Int { field: IntField, values: Vec<i64> },
    /// `name = '...'` (whole name) or `name has '...'` (part of it).
    Name { op: NameOp, value: String },
    /// A calendar date comparison; `date` is `YYYY-MM-DD`.
    Date { field: DateField, op: DateOp, date: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntField {
    /// The task's id.
    Id,
    /// The task's project.
    Project,
    /// The task's parent (subtasks of a task).
    Parent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameOp {
    Equals,
    Has,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateField {
    /// `dateadd`, `date_added`.
    Added,
    /// `datestart`, `date_start`.
    Start,
    /// `dateend`, `date_end`.
    End,
    /// `dateclose`, `date_closed`.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateOp {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

impl DateOp {
    /// The SQL operator.
    pub fn as_sql(self) -> &'static str {
        match self {
            DateOp::Eq => "=",
            DateOp::Ne => "<>",
            DateOp::Gt => ">",
            DateOp::Lt => "<",
            DateOp::Ge => ">=",
            DateOp::Le => "<=",
        }
    }

    /// Whether `left op right` holds, for ordered values.
    pub fn holds<T: Ord>(self, left: T, right: T) -> bool {
        match self {
            DateOp::Eq => left == right,
            DateOp::Ne => left != right,
            DateOp::Gt => left > right,
            DateOp::Lt => left < right,
            DateOp::Ge => left >= right,
            DateOp::Le => left <= right,
        }
    }
}

/// Why a filter was refused; its text is meant for `message_details` (it starts with `filter: `).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// Byte offset of the problem in the input.
    pub at: usize,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "filter: {} (at {})", self.message, self.at)
    }
}

impl std::error::Error for FilterError {}

fn error<T>(at: usize, message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError { at, message: message.into() })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A bare word: field name or keyword.
    Word(String),
    Int(i64),
    Str(String),
    Op(Op),
    Open,
    Close,
    Comma,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Le => "<=",
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(word) => word.clone(),
        Token::Int(n) => n.to_string(),
        Token::Str(s) => format!("'{s}'"),
        Token::Op(op) => op.text().to_owned(),
        Token::Open => "(".into(),
        Token::Close => ")".into(),
        Token::Comma => ",".into(),
    }
}

/// Splits the input into tokens with their byte offsets.
fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        match c {
            _ if c.is_ascii_whitespace() => {
                i += 1;
            }
            b'(' => {
                tokens.push((start, Token::Open));
                i += 1;
            }
            b')' => {
                tokens.push((start, Token::Close));
                i += 1;
            }
            b',' => {
                tokens.push((start, Token::Comma));
                i += 1;
            }
            b'=' => {
                // `==` is read as `=`.
                i += if bytes.get(i + 1) == Some(&b'=') { 2 } else { 1 };
                tokens.push((start, Token::Op(Op::Eq)));
            }
            b'!' => {
                // `!=`, also written `! =` in the documentation.
                let mut j = i + 1;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                if bytes.get(j) != Some(&b'=') {
                    return error(start, "expected = after !");
                }
                tokens.push((start, Token::Op(Op::Ne)));
                i = j + 1;
            }
            b'<' | b'>' => {
                let (op, len) = match (c, bytes.get(i + 1)) {
                    (b'<', Some(b'=')) => (Op::Le, 2),
                    (b'>', Some(b'=')) => (Op::Ge, 2),
                    (b'<', Some(b'>')) => (Op::Ne, 2),
                    (b'<', _) => (Op::Lt, 1),
                    _ => (Op::Gt, 1),
                };
                tokens.push((start, Token::Op(op)));
                i += len;
            }
            b'\'' | b'"' => {
                let quote = c;
                let mut value = String::new();
                let mut j = i + 1;
                let mut closed = false;
                while j < bytes.len() {
                    let b = bytes[j];
                    if b == b'\\' && j + 1 < bytes.len() && (bytes[j + 1] == quote || bytes[j + 1] == b'\\') {
                        value.push(bytes[j + 1] as char);
                        j += 2;
                    } else if b == quote && bytes.get(j + 1) == Some(&quote) {
                        value.push(quote as char);
                        j += 2;
                    } else if b == quote {
                        closed = true;
                        j += 1;
                        break;
                    } else {
                        // Copy one whole UTF-8 character.
                        let len = utf8_len(b);
                        let end = (j + len).min(bytes.len());
                        value.push_str(input.get(j..end).unwrap_or("\u{FFFD}"));
                        j = end;
                    }
                }
                if !closed {
                    return error(start, "unterminated string");
                }
                tokens.push((start, Token::Str(value)));
                i = j;
            }
            b'0'..=b'9' => {
                let mut j = i;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                if j < bytes.len() && (bytes[j].is_ascii_alphabetic() || bytes[j] == b'_' || bytes[j] == b'.') {
                    return error(start, format!("malformed number {}", word_at(input, start)));
                }
                let digits = &input[i..j];
                match digits.parse::<i64>() {
                    Ok(n) if n <= MAX_INT => tokens.push((start, Token::Int(n))),
                    _ => return error(start, format!("number {digits} is too large")),
                }
                i = j;
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                tokens.push((start, Token::Word(input[i..j].to_owned())));
                i = j;
            }
            _ => {
                let shown = input[start..].chars().next().unwrap_or('?');
                return error(start, format!("unexpected character {shown:?}"));
            }
        }
    }
    Ok(tokens)
}

/// The length of the UTF-8 sequence starting with byte `b` (1 for a stray continuation byte).
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The run of word characters (and dots) at `start`, for error messages.
fn word_at(input: &str, start: usize) -> &str {
    let rest = &input[start..];
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len());
    &rest[..end]
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    /// Byte length of the input (the offset reported at its end).
    end: usize,
}

enum Field {
    Int(IntField),
    Name,
    Date(DateField),
}

fn field(word: &str) -> Option<Field> {
    Some(match word {
        "id" => Field::Int(IntField::Id),
        "project" => Field::Int(IntField::Project),
        "parent" => Field::Int(IntField::Parent),
        "name" => Field::Name,
        "dateadd" | "date_added" => Field::Date(DateField::Added),
        "datestart" | "date_start" => Field::Date(DateField::Start),
        "dateend" | "date_end" => Field::Date(DateField::End),
        "dateclose" | "date_closed" => Field::Date(DateField::Closed),
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, token)| token)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(at, _)| *at)
    }

    fn next(&mut self) -> Option<(usize, Token)> {
        let token = self.tokens.get(self.pos).cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut items = vec![self.and_expr(depth)?];
        while self.is_word("or") {
            self.pos += 1;
            items.push(self.and_expr(depth)?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Or(items) })
    }

    fn and_expr(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut items = vec![self.primary(depth)?];
        while self.is_word("and") {
            self.pos += 1;
            items.push(self.primary(depth)?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let at = self.offset();
        match self.next() {
            Some((_, Token::Open)) => {
                if depth >= MAX_DEPTH {
                    return error(at, format!("parentheses nest deeper than {MAX_DEPTH}"));
                }
                if self.peek() == Some(&Token::Close) {
                    return error(at, "empty parentheses");
                }
                let inner = self.expr(depth + 1)?;
                let close_at = self.offset();
                match self.next() {
                    Some((_, Token::Close)) => Ok(inner),
                    Some((_, token)) => error(close_at, format!("expected ) but found {}", describe(&token))),
                    None => error(close_at, "unbalanced parentheses: missing )"),
                }
            }
            Some((_, Token::Word(word))) => self.condition(at, &word).map(Expr::Cond),
            Some((_, Token::Close)) => error(at, "unbalanced parentheses: unexpected )"),
            Some((_, token)) => error(at, format!("expected a field but found {}", describe(&token))),
            None => error(at, "expected a condition but the filter ended"),
        }
    }

    fn condition(&mut self, at: usize, word: &str) -> Result<Condition, FilterError> {
        let Some(field) = field(word) else {
            if matches!(word.to_ascii_lowercase().as_str(), "and" | "or" | "in" | "has") {
                return error(at, format!("unexpected {word}"));
            }
            return error(at, format!("unknown field {word}"));
        };
        let op_at = self.offset();
        let op = self.next();
        match field {
            Field::Int(field) => match op {
                Some((_, Token::Op(Op::Eq))) => Ok(Condition::Int { field, values: vec![self.int()?] }),
                Some((_, Token::Word(w))) if w == "in" => Ok(Condition::Int { field, values: self.int_list()? }),
                other => error(op_at, format!("{word} takes = or in, not {}", shown(other.as_ref()))),
            },
            Field::Name => {
                let op = match op {
                    Some((_, Token::Op(Op::Eq))) => NameOp::Equals,
                    Some((_, Token::Word(w))) if w == "has" => NameOp::Has,
                    other => return error(op_at, format!("name takes = or has, not {}", shown(other.as_ref()))),
                };
                let value_at = self.offset();
                match self.next() {
                    Some((_, Token::Str(value))) => Ok(Condition::Name { op, value }),
                    other => error(value_at, format!("expected a quoted name, not {}", shown(other.as_ref()))),
                }
            }
            Field::Date(field) => {
                let op = match op {
                    Some((_, Token::Op(op))) => match op {
                        Op::Eq => DateOp::Eq,
                        Op::Ne => DateOp::Ne,
                        Op::Gt => DateOp::Gt,
                        Op::Lt => DateOp::Lt,
                        Op::Ge => DateOp::Ge,
                        Op::Le => DateOp::Le,
                    },
                    other => {
                        return error(
                            op_at,
                            format!("{word} takes =, !=, >, <, >= or <=, not {}", shown(other.as_ref())),
                        );
                    }
                };
                let value_at = self.offset();
                match self.next() {
                    Some((_, Token::Str(value))) => match parse_date(&value) {
                        Some(date) => Ok(Condition::Date { field, op, date }),
                        None => error(value_at, format!("invalid date '{value}': use 'DD.MM.YYYY'")),
                    },
                    other => error(value_at, format!("expected a quoted date, not {}", shown(other.as_ref()))),
                }
            }
        }
    }

    fn int(&mut self) -> Result<i64, FilterError> {
        let at = self.offset();
        match self.next() {
            Some((_, Token::Int(n))) => Ok(n),
            // A quoted number is accepted too: `project = '2456'`.
            Some((_, Token::Str(s))) if !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_digit()) => {
                match s.parse::<i64>() {
                    Ok(n) if n <= MAX_INT => Ok(n),
                    _ => error(at, format!("number {s} is too large")),
                }
            }
            other => error(at, format!("expected a number, not {}", shown(other.as_ref()))),
        }
    }

    fn int_list(&mut self) -> Result<Vec<i64>, FilterError> {
        let at = self.offset();
        if !matches!(self.next(), Some((_, Token::Open))) {
            return error(at, "in takes a list in parentheses: in (1, 2)");
        }
        let mut values = vec![self.int()?];
        loop {
            let at = self.offset();
            match self.next() {
                Some((_, Token::Comma)) => values.push(self.int()?),
                Some((_, Token::Close)) => return Ok(values),
                other => return error(at, format!("expected , or ) in the list, not {}", shown(other.as_ref()))),
            }
        }
    }
}

fn shown(token: Option<&(usize, Token)>) -> String {
    match token {
        Some((_, token)) => describe(token),
        None => "the end of the filter".into(),
    }
}

/// Parses a filter.
pub fn parse(input: &str) -> Result<Expr, FilterError> {
    if input.len() > MAX_LEN {
        return error(MAX_LEN, format!("longer than {MAX_LEN} bytes"));
    }
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return error(0, "empty");
    }
    let mut parser = Parser { tokens, pos: 0, end: input.len() };
    let expr = parser.expr(0)?;
    let at = parser.offset();
    match parser.next() {
        None => Ok(expr),
        Some((_, Token::Close)) => error(at, "unbalanced parentheses: unexpected )"),
        Some((_, Token::Word(word))) if matches!(word.as_str(), "AND" | "OR" | "And" | "Or") => {
            error(at, format!("{word}: and/or must be lowercase"))
        }
        Some((_, token)) => error(at, format!("expected and/or but found {}", describe(&token))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(field: IntField, values: &[i64]) -> Expr {
        Expr::Cond(Condition::Int { field, values: values.to_vec() })
    }

    fn name(op: NameOp, value: &str) -> Expr {
        Expr::Cond(Condition::Name { op, value: value.into() })
    }

    fn date(field: DateField, op: DateOp, date: &str) -> Expr {
        Expr::Cond(Condition::Date { field, op, date: date.into() })
    }

    fn message(input: &str) -> String {
        parse(input).unwrap_err().to_string()
    }

    #[test]
    fn documented_examples() {
        assert_eq!(parse("project = 2456"), Ok(int(IntField::Project, &[2456])));
        assert_eq!(parse("id in (1234, 1240)"), Ok(int(IntField::Id, &[1234, 1240])));
        assert_eq!(parse("name = 'Task Report'"), Ok(name(NameOp::Equals, "Task Report")));
        assert_eq!(parse("name has 'Report'"), Ok(name(NameOp::Has, "Report")));
        assert_eq!(parse("dateadd = '01.05.2021'"), Ok(date(DateField::Added, DateOp::Eq, "2021-05-01")));
        assert_eq!(
            parse("(name has 'Report' or name has 'Approval') and (dateend>'25.05.2021' and dateend<'31.05.2021')"),
            Ok(Expr::And(vec![
                Expr::Or(vec![name(NameOp::Has, "Report"), name(NameOp::Has, "Approval")]),
                Expr::And(vec![
                    date(DateField::End, DateOp::Gt, "2021-05-25"),
                    date(DateField::End, DateOp::Lt, "2021-05-31"),
                ]),
            ]))
        );
        assert_eq!(parse("name has 'Worksection'"), Ok(name(NameOp::Has, "Worksection")));
        assert_eq!(parse("parent = 331894"), Ok(int(IntField::Parent, &[331_894])));
    }

    #[test]
    fn every_date_field_alias_and_operator() {
        for (word, field) in [
            ("dateadd", DateField::Added),
            ("date_added", DateField::Added),
            ("datestart", DateField::Start),
            ("date_start", DateField::Start),
            ("dateend", DateField::End),
            ("date_end", DateField::End),
            ("dateclose", DateField::Closed),
            ("date_closed", DateField::Closed),
        ] {
            for (op_text, op) in [
                ("=", DateOp::Eq),
                ("!=", DateOp::Ne),
                ("! =", DateOp::Ne),
                ("<>", DateOp::Ne),
                (">", DateOp::Gt),
                ("<", DateOp::Lt),
                (">=", DateOp::Ge),
                ("<=", DateOp::Le),
            ] {
                let input = format!("{word}{op_text}'2021-01-15'");
                assert_eq!(parse(&input), Ok(date(field, op, "2021-01-15")), "{input}");
            }
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(
            parse("id = 1 or id = 2 and id = 3"),
            Ok(Expr::Or(vec![
                int(IntField::Id, &[1]),
                Expr::And(vec![int(IntField::Id, &[2]), int(IntField::Id, &[3])])
            ]))
        );
        assert_eq!(
            parse("id = 1 and id = 2 or id = 3"),
            Ok(Expr::Or(vec![
                Expr::And(vec![int(IntField::Id, &[1]), int(IntField::Id, &[2])]),
                int(IntField::Id, &[3])
            ]))
        );
        assert_eq!(
            parse("id = 1 and (id = 2 or id = 3)"),
            Ok(Expr::And(vec![
                int(IntField::Id, &[1]),
                Expr::Or(vec![int(IntField::Id, &[2]), int(IntField::Id, &[3])])
            ]))
        );
        assert_eq!(parse("((((id = 7))))"), Ok(int(IntField::Id, &[7])));
    }

    #[test]
    fn strings_and_spacing() {
        assert_eq!(parse("name='It''s'"), Ok(name(NameOp::Equals, "It's")));
        assert_eq!(parse(r"name='It\'s \\ ok'"), Ok(name(NameOp::Equals, r"It's \ ok")));
        assert_eq!(parse("name has \"Отчёт\""), Ok(name(NameOp::Has, "Отчёт")));
        assert_eq!(parse("name = ''"), Ok(name(NameOp::Equals, "")));
        assert_eq!(parse("  project=1\n\tand\r\nparent   =  2 "), parse("project = 1 and parent = 2"));
        assert_eq!(parse("project = '2456'"), Ok(int(IntField::Project, &[2456])));
        assert_eq!(parse("id in (5)"), Ok(int(IntField::Id, &[5])));
        assert_eq!(parse("id == 5"), Ok(int(IntField::Id, &[5])));
    }

    #[test]
    fn clear_errors() {
        assert!(message("priority = 5").contains("unknown field priority"));
        assert!(message("Name = 'x'").contains("unknown field Name"));
        assert!(message("(id = 1").contains("unbalanced parentheses"));
        assert!(message("id = 1)").contains("unbalanced parentheses"));
        assert!(message(")").contains("unbalanced parentheses"));
        assert!(message("id = 1 AND id = 2").contains("lowercase"));
        assert!(message("id = 1 id = 2").contains("expected and/or"));
        assert!(message("id > 5").contains("id takes = or in"));
        assert!(message("name > 'a'").contains("name takes = or has"));
        assert!(message("name = abc").contains("expected a quoted name"));
        assert!(message("name has 'abc").contains("unterminated string"));
        assert!(message("dateend has '01.01.2021'").contains("dateend takes"));
        assert!(message("dateend > '32.01.2021'").contains("invalid date"));
        assert!(message("dateend > 01.01.2021").contains("malformed number"));
        assert!(message("id = 99999999999999999999").contains("too large"));
        assert!(message("id = 9007199254740993").contains("too large"));
        assert!(message("id in 1, 2").contains("in takes a list"));
        assert!(message("id in (1 2)").contains("expected , or )"));
        assert!(message("id in ()").contains("expected a number"));
        assert!(message("id =").contains("the end of the filter"));
        assert!(message("id = 1 and").contains("filter ended"));
        assert!(message("").contains("empty"));
        assert!(message("   ").contains("empty"));
        assert!(message("id = 1; drop table tasks").contains("unexpected character ';'"));
        assert!(message("id ! 1").contains("expected = after !"));
        assert!(message("and = 1").contains("unexpected and"));
        assert!(message("= 1").contains("expected a field"));
        assert!(message("()").contains("empty parentheses"));
        assert!(message("id = 1 and ()").contains("empty parentheses"));
        assert!(message("priority = 5").starts_with("filter: "));
    }

    #[test]
    fn limits() {
        let deep = format!("{}id = 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(parse(&deep), Ok(int(IntField::Id, &[1])));
        let deeper = format!("{}id = 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(parse(&deeper).unwrap_err().message.contains("deeper than"));
        let very_deep = "(".repeat(100_000);
        assert!(parse(&very_deep).unwrap_err().message.contains("longer than"));
        let long = format!("name has '{}'", "x".repeat(MAX_LEN));
        assert!(parse(&long).unwrap_err().message.contains("longer than"));
        let many = vec!["id = 1"; 400].join(" or ");
        assert!(many.len() <= MAX_LEN);
        assert!(matches!(parse(&many), Ok(Expr::Or(items)) if items.len() == 400));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let samples = [
            "'",
            "\"",
            "\\",
            "name = '\\",
            "name = 'a\\'",
            "(((",
            ")))",
            "id in (",
            "id in (1,",
            "!",
            "<",
            ">=",
            "name has 'é",
            "name has '\u{1F600}'",
            "\u{0}",
            "id = -1",
            "id = 1.5",
            "dateadd = ''",
            "_",
            "__ = 1",
            "name = 'a' or",
            "or",
            "and and",
            "in",
            "has",
            "id in (1,,2)",
            "\u{FEFF}id = 1",
        ];
        for sample in samples {
            let _ = parse(sample);
        }
        // Every prefix of a valid filter is either valid or a clean error.
        let full = "(name has 'Report' or name has 'Approval') and (dateend>'25.05.2021' and dateend<'31.05.2021')";
        for end in 0..=full.len() {
            let _ = parse(&full[..end]);
        }
    }

    #[test]
    fn operators_hold() {
        assert!(DateOp::Ge.holds("2021-01-02", "2021-01-02"));
        assert!(!DateOp::Gt.holds("2021-01-02", "2021-01-02"));
        assert!(DateOp::Ne.holds(1, 2));
        assert_eq!(DateOp::Ne.as_sql(), "<>");
    }
}
