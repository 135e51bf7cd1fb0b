//! A small CSV reader for import sources: comma-separated fields, RFC 4180 quoting
//! (`"a, b"`, `""` for a quote, line breaks inside quotes), `\n` or `\r\n` line ends.
//!
//! Unquoted fields are trimmed, since spreadsheets and hand-written files often pad
//! them (`a.jpg, p1`); quoted fields are kept exactly. Blank lines are skipped. Each
//! record keeps the line it starts on, so failures can name it.

/// Why a record cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum CsvError {
    /// A quoted field runs to the end of the file.
    #[error("a quoted field is not closed before the end of the file")]
    UnclosedQuote,
    /// Something other than blanks follows a closing quote in field `field` (1-based).
    #[error("text after a closing quote in field {field}")]
    TextAfterQuote {
        /// The field, counted from 1.
        field: usize,
    },
}

/// One record of the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CsvRecord {
    /// Line (1-based) the record starts on.
    pub line: usize,
    /// Its fields, or why it cannot be read.
    pub fields: Result<Vec<String>, CsvError>,
}

/// Splits a file's text into records.
pub(crate) fn records(text: &str) -> Vec<CsvRecord> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut error = None;
        loop {
            match chars.next() {
                None => {
                    push_field(&mut fields, &mut field, quoted);
                    break;
                }
                Some('\n') => {
                    line += 1;
                    push_field(&mut fields, &mut field, quoted);
                    break;
                }
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some(',') => {
                    push_field(&mut fields, &mut field, quoted);
                    quoted = false;
                }
                Some('"') if field.trim().is_empty() && !quoted => {
                    field.clear();
                    quoted = true;
                    match read_quoted(&mut chars, &mut field, &mut line) {
                        Ok(()) => {}
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                // Only blanks may follow a closing quote.
                Some(c) if quoted && c.is_whitespace() => {}
                Some(_) if quoted => {
                    error = Some(CsvError::TextAfterQuote {
                        field: fields.len() + 1,
                    });
                    skip_line(&mut chars, &mut line);
                    break;
                }
                Some(c) => field.push(c),
            }
        }
        let blank = error.is_none() && fields.len() == 1 && fields[0].is_empty();
        if !blank {
            out.push(CsvRecord {
                line: start,
                fields: error.map_or(Ok(fields), Err),
            });
        }
    }
    out
}

fn push_field(fields: &mut Vec<String>, field: &mut String, quoted: bool) {
    let value = std::mem::take(field);
    fields.push(if quoted {
        value
    } else {
        value.trim().to_string()
    });
}

/// Reads a quoted field after its opening quote, up to and including the closing one.
fn read_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    field: &mut String,
    line: &mut usize,
) -> Result<(), CsvError> {
    loop {
        match chars.next() {
            None => return Err(CsvError::UnclosedQuote),
            Some('"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            Some('"') => return Ok(()),
            Some(c) => {
                if c == '\n' {
                    *line += 1;
                }
                field.push(c);
            }
        }
    }
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &mut usize) {
    for c in chars.by_ref() {
        if c == '\n' {
            *line += 1;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<(usize, Vec<String>)> {
        records(text)
            .into_iter()
            .map(|r| (r.line, r.fields.unwrap()))
            .collect()
    }

    #[test]
    fn plain_padded_and_quoted_fields() {
        let got =
            fields("\u{feff}path,product_id\r\n a.jpg , p1\n\n\"b, c.jpg\",\"say \"\"hi\"\"\"\n");
        assert_eq!(
            got,
            vec![
                (1, vec!["path".to_string(), "product_id".into()]),
                (2, vec!["a.jpg".into(), "p1".into()]),
                (4, vec!["b, c.jpg".into(), "say \"hi\"".into()]),
            ]
        );
    }

    #[test]
    fn line_breaks_inside_quotes_and_empty_fields() {
        let got = fields("a,\"two\nlines\",\nnext,,x");
        assert_eq!(
            got,
            vec![
                (1, vec!["a".to_string(), "two\nlines".into(), String::new()]),
                (3, vec!["next".into(), String::new(), "x".into()]),
            ]
        );
    }

    #[test]
    fn malformed_quotes_are_reported_on_their_line() {
        let got = records("ok,1\n\"a\"b,2\nfine,3\n\"open,4\n");
        assert_eq!(got[0].fields, Ok(vec!["ok".into(), "1".into()]));
        assert_eq!(got[1].line, 2);
        assert!(got[1]
            .fields
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("closing quote"));
        assert_eq!(got[2].fields, Ok(vec!["fine".into(), "3".into()]));
        assert_eq!(got[3].line, 4);
        assert!(got[3]
            .fields
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("not closed"));
        assert_eq!(got.len(), 4);
    }
}
