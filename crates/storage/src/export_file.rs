//! The export file: JSON lines, one record a line.
//!
//! ```text
//! {"format":"wsoauth-export","version":1,"schema":14,"exported_at":1700000000}
//! {"table":"settings","columns":["name","value"]}
//! ["digest_key",{"hex":"9f3a..."}]
//! {"table":"accounts","columns":["id","name","slug","created_at"]}
//! [1,"Acme","acme",1700000000]
//! ...
//! {"end":{"tables":26,"rows":1234}}
//! ```
//!
//! The header names the format, its version and the schema version of the database exported. Each table (every
//! one, even empty, in `TABLES`' order) is a line `{"table":NAME,"columns":[...]}` followed by its rows, one JSON
//! array a row, values in the columns' order: `null`, integers and reals as JSON numbers, text as strings, blobs
//! as `{"hex":"..."}`. A real whose JSON number would not read back to the same bits (or that is not finite)
//! is written `{"real":"..."}` with Rust's shortest exact text (`inf`, `-inf`, `NaN` included). The last line
//! counts the tables and rows, so an import refuses a file cut short.
//!
//! The file holds everything: password hashes, the digests of tokens and secrets, the digest key and the signing
//! keys' private keys. Treat it as a secret.

use std::io::{BufRead, Write};

use serde_json::{Map, Number, Value as Json, json};
use wsoauth_domain::secret::hex;

use crate::repo::transfer::{Record, TransferError, Value};

/// The `format` of the header line.
pub const FORMAT: &str = "wsoauth-export";
/// The version of the file format this code writes and reads.
pub const FORMAT_VERSION: i64 = 1;

/// The header line's facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The schema version of the database exported.
    pub schema: i64,
    /// Unix seconds.
    pub exported_at: i64,
}

/// Writes an export: the header at once, each record as it comes, the closing line at [`Writer::finish`].
pub struct Writer<W: Write> {
    out: W,
    tables: u64,
    rows: u64,
}

impl<W: Write> Writer<W> {
    pub fn start(mut out: W, header: Header) -> std::io::Result<Writer<W>> {
        let line = json!({"format": FORMAT, "version": FORMAT_VERSION, "schema": header.schema,
                          "exported_at": header.exported_at});
        writeln!(out, "{line}")?;
        Ok(Writer { out, tables: 0, rows: 0 })
    }

    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        let line = match record {
            Record::Table { name, columns } => {
                self.tables += 1;
                json!({"table": name, "columns": columns})
            }
            Record::Row(values) => {
                self.rows += 1;
                Json::Array(values.iter().map(to_json).collect())
            }
        };
        writeln!(self.out, "{line}")
    }

    /// Writes the closing line and flushes; returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        writeln!(self.out, "{}", json!({"end": {"tables": self.tables, "rows": self.rows}}))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Int(v) => Json::from(*v),
        Value::Real(v) => match Number::from_f64(*v) {
            // a number serde_json would read back as other bits is written as exact text instead
            Some(number) if number.to_string().parse::<Json>().ok().and_then(|n| n.as_f64()) == Some(*v) => {
                Json::Number(number)
            }
            _ => json!({"real": v.to_string()}),
        },
        Value::Text(v) => Json::String(v.clone()),
        Value::Blob(v) => json!({"hex": hex(v)}),
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| char::from(c).to_digit(16);
            u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()
        })
        .collect()
}

/// Reads an export: [`Reader::open`] checks the header; then each item is a record, and the iteration ends
/// after the closing line (an error when the closing line is missing or its counts differ).
pub struct Reader<R: BufRead> {
    input: R,
    line: u64,
    text: String,
    tables: u64,
    rows: u64,
    ended: bool,
    failed: bool,
}

impl<R: BufRead> Reader<R> {
    pub fn open(mut input: R) -> Result<(Reader<R>, Header), TransferError> {
        let mut text = String::new();
        input.read_line(&mut text).map_err(TransferError::Read)?;
        let not_export = || TransferError::NotAnExport(format!("the first line is not a {FORMAT:?} header"));
        let header: Map<String, Json> = match serde_json::from_str(text.trim_end()) {
            Ok(Json::Object(header)) => header,
            _ => return Err(not_export()),
        };
        if header.get("format").and_then(Json::as_str) != Some(FORMAT) {
            return Err(not_export());
        }
        let number = |name: &str| header.get(name).and_then(Json::as_i64).ok_or_else(not_export);
        let version = number("version")?;
        if version != FORMAT_VERSION {
            return Err(TransferError::FormatVersion(version));
        }
        let header = Header { schema: number("schema")?, exported_at: number("exported_at")? };
        let reader = Reader { input, line: 1, text, tables: 0, rows: 0, ended: false, failed: false };
        Ok((reader, header))
    }

    fn error(&self, message: impl Into<String>) -> TransferError {
        TransferError::Format { line: self.line, message: message.into() }
    }

    /// The next record; `None` after the closing line.
    fn next_record(&mut self) -> Result<Option<Record>, TransferError> {
        loop {
            self.text.clear();
            if self.input.read_line(&mut self.text).map_err(TransferError::Read)? == 0 {
                return if self.ended { Ok(None) } else { Err(TransferError::Truncated(self.line)) };
            }
            self.line += 1;
            let text = self.text.trim();
            if text.is_empty() {
                continue;
            }
            if self.ended {
                return Err(self.error("text after the closing line"));
            }
            // serde_json's messages name positions and expectations, never the text itself
            let json: Json = serde_json::from_str(text).map_err(|e| self.error(format!("not JSON ({e})")))?;
            match json {
                Json::Array(values) => {
                    let values = values.into_iter().map(from_json).collect::<Result<Vec<_>, _>>();
                    let values = values.map_err(|message| self.error(message))?;
                    self.rows += 1;
                    return Ok(Some(Record::Row(values)));
                }
                Json::Object(object) if object.contains_key("table") => {
                    let name = object.get("table").and_then(Json::as_str).map(str::to_owned);
                    let columns = object.get("columns").and_then(Json::as_array).and_then(|columns| {
                        columns.iter().map(|c| c.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>()
                    });
                    let (Some(name), Some(columns)) = (name, columns) else {
                        return Err(self.error("a table line needs a name and a list of column names"));
                    };
                    self.tables += 1;
                    return Ok(Some(Record::Table { name, columns }));
                }
                Json::Object(object) if object.contains_key("end") => {
                    let end = object.get("end");
                    let count = |name: &str| end.and_then(|e| e.get(name)).and_then(Json::as_u64);
                    if count("tables") != Some(self.tables) || count("rows") != Some(self.rows) {
                        return Err(self.error(format!(
                            "the closing line's counts differ from the {} tables and {} rows read",
                            self.tables, self.rows
                        )));
                    }
                    self.ended = true;
                }
                _ => return Err(self.error("neither a table, a row nor the closing line")),
            }
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Record, TransferError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_record().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

fn from_json(json: Json) -> Result<Value, String> {
    Ok(match json {
        Json::Null => Value::Null,
        Json::Number(number) => match number.as_i64() {
            Some(v) => Value::Int(v),
            None if number.is_u64() => return Err("an integer out of range".into()),
            None => Value::Real(number.as_f64().ok_or("a number out of range")?),
        },
        Json::String(text) => Value::Text(text),
        Json::Object(object) => match (object.len(), object.get("hex"), object.get("real")) {
            (1, Some(Json::String(text)), None) => Value::Blob(unhex(text).ok_or("a blob that is not hex")?),
            (1, None, Some(Json::String(text))) => Value::Real(text.parse().map_err(|_| "a real that is not one")?),
            _ => return Err("an object that is neither {\"hex\":...} nor {\"real\":...}".into()),
        },
        Json::Bool(_) | Json::Array(_) => return Err("a value of no stored type".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(records: &[Record]) -> Vec<Record> {
        let mut writer = Writer::start(Vec::new(), Header { schema: 14, exported_at: 5 }).unwrap();
        for record in records {
            writer.write(record).unwrap();
        }
        let bytes = writer.finish().unwrap();
        let (reader, header) = Reader::open(bytes.as_slice()).unwrap();
        assert_eq!(header, Header { schema: 14, exported_at: 5 });
        reader.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn every_value_reads_back_as_written() {
        let reals = [0.0, -0.0, 1.5, 0.1, 12.34, 0.30000000000000004, 1e300, 5e-324, f64::MAX, f64::INFINITY];
        let mut row =
            vec![Value::Null, Value::Int(i64::MIN), Value::Int(i64::MAX), Value::Text("{\"hex\":\"00\"}".into())];
        row.push(Value::Blob(vec![0, 1, 0xab, 0xff]));
        row.push(Value::Blob(Vec::new()));
        row.extend(reals.iter().map(|r| Value::Real(*r)));
        let records = vec![Record::Table { name: "t".into(), columns: vec!["a".into()] }, Record::Row(row.clone())];
        let back = round_trip(&records);
        assert_eq!(back, records);
        let Record::Row(values) = &back[1] else { panic!("a row") };
        for (value, real) in values[6..].iter().zip(reals) {
            let Value::Real(read) = value else { panic!("a real") };
            assert_eq!(read.to_bits(), real.to_bits());
        }
        let nan = round_trip(&[Record::Row(vec![Value::Real(f64::NAN)])]);
        assert!(matches!(nan[0], Record::Row(ref v) if matches!(v[0], Value::Real(r) if r.is_nan())));
    }

    #[test]
    fn a_file_cut_short_or_miscounted_is_refused() {
        let mut writer = Writer::start(Vec::new(), Header { schema: 1, exported_at: 0 }).unwrap();
        writer.write(&Record::Table { name: "t".into(), columns: vec!["a".into()] }).unwrap();
        writer.write(&Record::Row(vec![Value::Int(1)])).unwrap();
        let whole = String::from_utf8(writer.finish().unwrap()).unwrap();
        let cut: String = whole.lines().take(3).map(|l| format!("{l}\n")).collect();
        let (reader, _) = Reader::open(cut.as_bytes()).unwrap();
        let last = reader.last().unwrap();
        assert!(matches!(last, Err(TransferError::Truncated(3))), "{last:?}");
        let miscounted = whole.replace("\"rows\":1", "\"rows\":2");
        let (reader, _) = Reader::open(miscounted.as_bytes()).unwrap();
        assert!(reader.last().unwrap().is_err());
        let extra = format!("{whole}[1]\n");
        let (reader, _) = Reader::open(extra.as_bytes()).unwrap();
        assert!(reader.last().unwrap().is_err());
    }

    #[test]
    fn other_files_are_refused_at_the_header() {
        for text in ["", "hello\n", "{\"format\":\"other\",\"version\":1}\n", "[1,2]\n"] {
            assert!(matches!(Reader::open(text.as_bytes()), Err(TransferError::NotAnExport(_))), "{text}");
        }
        let later = "{\"format\":\"wsoauth-export\",\"version\":2,\"schema\":14,\"exported_at\":0}\n";
        assert!(matches!(Reader::open(later.as_bytes()), Err(TransferError::FormatVersion(2))));
    }

    #[test]
    fn bad_values_name_the_line_but_not_the_value() {
        let file = "{\"format\":\"wsoauth-export\",\"version\":1,\"schema\":14,\"exported_at\":0}\n\
                    {\"table\":\"t\",\"columns\":[\"a\"]}\n[{\"hex\":\"secret-zz\"}]\n";
        let (mut reader, _) = Reader::open(file.as_bytes()).unwrap();
        assert!(reader.next().unwrap().is_ok());
        let error = reader.next().unwrap().unwrap_err().to_string();
        assert!(error.starts_with("line 3:") && !error.contains("secret"), "{error}");
        assert!(reader.next().is_none());
    }
}
