//! One line of an `increment.meta` file: a JSON object describing one ADD or DELETE.
//!
//! ```text
//! {"OperationType":"ADD","ProductId":"p1","PicName":"shoes/1.jpg","CategoryId":4,
//!  "CustomContent":"k:v","IntAttr":5,"StrAttr":"red","Region":"10,200,5,150","Crop":true}
//! {"OperationType":"DELETE","ProductId":"p1","PicName":"shoes/1.jpg"}
//! ```
//!
//! PicName is the picture's path relative to the meta file's folder, and is stored as
//! given. A DELETE without PicName removes every picture of the product. Integers may
//! also be written as strings of digits and Crop as `"true"`/`"false"`, as hand-made
//! files often have them; null or empty fields count as absent; an unknown field is an
//! error rather than silently dropped (a misspelt `IntAtr` would otherwise be lost).
//!
//! The limits are the API's: names up to 512 characters, CustomContent up to 4096,
//! StrAttr up to 128 without `\ ¥ $ & %`, IntAttr 32-bit signed. The engine does not
//! depend on the HTTP layer, so they are restated here.
//!
//! DumpMeta writes ADD lines with the same names ([`to_line`]), so a dump can be fed
//! back through IncreaseInstance.

use serde_json::{Map, Value};

use crate::engine::Attributes;
use crate::store::Record;
use crate::vision::{Region, VisionError};

/// Longest ProductId and PicName, in characters.
const MAX_NAME_CHARS: usize = 512;
/// Longest CustomContent, in characters.
const MAX_CUSTOM_CONTENT_CHARS: usize = 4096;
/// Longest StrAttr, in characters.
const MAX_STR_ATTR_CHARS: usize = 128;
/// Characters a StrAttr may not contain.
const STR_ATTR_FORBIDDEN: [char; 5] = ['\\', '¥', '$', '&', '%'];
/// Names of the attribute fields, in the vendor's order.
const INT_ATTRS: [&str; 4] = ["IntAttr", "IntAttr2", "IntAttr3", "IntAttr4"];
/// Names of the string attribute fields.
const STR_ATTRS: [&str; 4] = ["StrAttr", "StrAttr2", "StrAttr3", "StrAttr4"];
/// Every field a line may have besides the attributes.
const OTHER_FIELDS: [&str; 7] = [
    "OperationType",
    "ProductId",
    "PicName",
    "CategoryId",
    "CustomContent",
    "Region",
    "Crop",
];

/// Why a line was refused (written to the task's error file).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LineError {
    /// The text is not JSON.
    #[error("not a JSON object: {0}")]
    NotJson(serde_json::Error),
    /// The JSON is not an object.
    #[error("not a JSON object")]
    NotObject,
    /// A field no line has (a misspelt name).
    #[error("unknown field {0:?}")]
    UnknownField(String),
    /// A field the operation needs is absent.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// OperationType is neither ADD nor DELETE.
    #[error("OperationType {0:?} is neither ADD nor DELETE")]
    UnknownOperation(String),
    /// CategoryId is out of range.
    #[error("CategoryId {0} does not exist")]
    NoSuchCategory(i64),
    /// Region is malformed.
    #[error("Region: {0}")]
    Region(VisionError),
    /// An IntAttr is outside the 32-bit signed range.
    #[error("{field} must fit a 32-bit signed integer, got {value}")]
    IntOutOfRange {
        /// The field.
        field: &'static str,
        /// The value given.
        value: i64,
    },
    /// A StrAttr holds a character it may not.
    #[error("{field} may not contain {found:?}")]
    Forbidden {
        /// The field.
        field: &'static str,
        /// The first such character.
        found: char,
    },
    /// A string is over its limit.
    #[error("{field} is longer than {max_chars} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its limit.
        max_chars: usize,
    },
    /// A field that must be a string is not.
    #[error("{field} must be a string, got {got}")]
    NotString {
        /// The field.
        field: &'static str,
        /// What was given.
        got: Value,
    },
    /// ProductId or PicName holds control characters.
    #[error("{0} contains control characters")]
    Control(&'static str),
    /// A field that must be an integer is not.
    #[error("{0} must be an integer")]
    NotInteger(&'static str),
    /// Crop is neither true nor false.
    #[error("{field} must be true or false, got {got}")]
    NotBoolean {
        /// The field.
        field: &'static str,
        /// What was given.
        got: Value,
    },
}

/// What one line asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operation {
    /// Add (or replace) a picture.
    Add(AddLine),
    /// Remove one picture, or every picture of the product when `pic_name` is `None`.
    Delete {
        /// ProductId.
        product_id: String,
        /// PicName.
        pic_name: Option<String>,
    },
}

/// An ADD line, checked for form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AddLine {
    /// ProductId.
    pub product_id: String,
    /// PicName: the picture's path relative to the meta file's folder.
    pub pic_name: String,
    /// CategoryId, if given.
    pub category_id: Option<u32>,
    /// Crop (default true).
    pub crop: bool,
    /// Region, if given.
    pub region: Option<Region>,
    /// CustomContent and attributes.
    pub attributes: Attributes,
}

/// Reads one line; `Err` is the reason, for the task's error file.
pub(crate) fn parse_line(text: &str) -> Result<Operation, LineError> {
    let value: Value = serde_json::from_str(text).map_err(LineError::NotJson)?;
    let Value::Object(map) = value else {
        return Err(LineError::NotObject);
    };
    if let Some(unknown) = map.keys().find(|k| {
        let k = k.as_str();
        !(OTHER_FIELDS.contains(&k) || INT_ATTRS.contains(&k) || STR_ATTRS.contains(&k))
    }) {
        return Err(LineError::UnknownField(unknown.clone()));
    }
    let line = Line(&map);
    let operation = line
        .string("OperationType", 16)?
        .ok_or(LineError::Missing("OperationType"))?;
    let product_id = line
        .name("ProductId")?
        .ok_or(LineError::Missing("ProductId"))?;
    let pic_name = line.name("PicName")?;
    if operation.eq_ignore_ascii_case("DELETE") {
        return Ok(Operation::Delete {
            product_id,
            pic_name,
        });
    }
    if !operation.eq_ignore_ascii_case("ADD") {
        return Err(LineError::UnknownOperation(operation));
    }
    let pic_name = pic_name.ok_or(LineError::Missing("PicName"))?;
    let category_id = match line.integer("CategoryId")? {
        None => None,
        Some(c) => Some(u32::try_from(c).map_err(|_| LineError::NoSuchCategory(c))?),
    };
    let region = match line.string("Region", 64)? {
        None => None,
        Some(r) => Some(Region::parse(&r).map_err(LineError::Region)?),
    };
    let mut attributes = Attributes {
        custom_content: line.string("CustomContent", MAX_CUSTOM_CONTENT_CHARS)?,
        ..Attributes::default()
    };
    for (i, &name) in INT_ATTRS.iter().enumerate() {
        if let Some(v) = line.integer(name)? {
            attributes.int_attrs[i] =
                Some(i32::try_from(v).map_err(|_| LineError::IntOutOfRange {
                    field: name,
                    value: v,
                })?);
        }
    }
    for (i, &name) in STR_ATTRS.iter().enumerate() {
        if let Some(v) = line.string(name, MAX_STR_ATTR_CHARS)? {
            if let Some(c) = v
                .chars()
                .find(|c| STR_ATTR_FORBIDDEN.contains(c) || c.is_control())
            {
                return Err(LineError::Forbidden {
                    field: name,
                    found: c,
                });
            }
            attributes.str_attrs[i] = Some(v);
        }
    }
    Ok(Operation::Add(AddLine {
        product_id,
        pic_name,
        category_id,
        crop: line.boolean("Crop")?.unwrap_or(true),
        region,
        attributes,
    }))
}

/// A stored picture as an ADD line (without the newline); absent fields are omitted.
pub(crate) fn to_line(record: &Record) -> String {
    let mut m = Map::new();
    m.insert("OperationType".into(), "ADD".into());
    m.insert("ProductId".into(), record.product_id.clone().into());
    m.insert("PicName".into(), record.pic_name.clone().into());
    m.insert("CategoryId".into(), record.category_id.into());
    if let Some(c) = &record.custom_content {
        m.insert("CustomContent".into(), c.clone().into());
    }
    for (name, v) in INT_ATTRS.iter().zip(&record.int_attrs) {
        if let Some(v) = v {
            m.insert((*name).into(), (*v).into());
        }
    }
    for (name, v) in STR_ATTRS.iter().zip(&record.str_attrs) {
        if let Some(v) = v {
            m.insert((*name).into(), v.clone().into());
        }
    }
    if let Some(r) = &record.region {
        m.insert("Region".into(), r.clone().into());
    }
    Value::Object(m).to_string()
}

/// Typed reads of a line's fields.
struct Line<'a>(&'a Map<String, Value>);

impl Line<'_> {
    /// The field unless absent, null or an empty string.
    fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .get(name)
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
    }

    fn string(&self, name: &'static str, max_chars: usize) -> Result<Option<String>, LineError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max_chars => Err(LineError::TooLong {
                field: name,
                max_chars,
            }),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(LineError::NotString {
                field: name,
                got: other.clone(),
            }),
        }
    }

    /// ProductId or PicName: a string within length, without control characters.
    fn name(&self, name: &'static str) -> Result<Option<String>, LineError> {
        let value = self.string(name, MAX_NAME_CHARS)?;
        if value
            .as_deref()
            .is_some_and(|v| v.chars().any(char::is_control))
        {
            return Err(LineError::Control(name));
        }
        Ok(value)
    }

    fn integer(&self, name: &'static str) -> Result<Option<i64>, LineError> {
        let value = match self.get(name) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(_) => None,
        };
        value.map(Some).ok_or(LineError::NotInteger(name))
    }

    fn boolean(&self, name: &'static str) -> Result<Option<bool>, LineError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => Err(LineError::NotBoolean {
                field: name,
                got: other.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_lines_read_with_lenient_types() {
        let op = parse_line(
            r#"{"OperationType":"add","ProductId":"p","PicName":"a/1.png","CategoryId":"3",
                "IntAttr":"-7","IntAttr3":9,"StrAttr":"red","CustomContent":"k:v",
                "Region":"1,100,2,120","Crop":"False","StrAttr2":null}"#,
        )
        .unwrap();
        let Operation::Add(add) = op else {
            panic!("not an add")
        };
        assert_eq!(add.category_id, Some(3));
        assert_eq!(add.attributes.int_attrs, [Some(-7), None, Some(9), None]);
        assert_eq!(add.attributes.str_attrs[0].as_deref(), Some("red"));
        assert_eq!(add.attributes.str_attrs[1], None);
        assert!(!add.crop);
        assert_eq!(
            add.region.map(|r| r.to_string()).as_deref(),
            Some("1,100,2,120")
        );
    }

    #[test]
    fn deletes_and_errors() {
        assert_eq!(
            parse_line(r#"{"OperationType":"DELETE","ProductId":"p"}"#).unwrap(),
            Operation::Delete {
                product_id: "p".into(),
                pic_name: None
            }
        );
        let long = "x".repeat(129);
        for (bad, why) in [
            ("[1]", "JSON object"),
            ("{", "JSON object"),
            (r#"{"ProductId":"p"}"#, "OperationType"),
            (r#"{"OperationType":"MOVE","ProductId":"p"}"#, "neither"),
            (r#"{"OperationType":"ADD","ProductId":"p"}"#, "PicName"),
            (r#"{"OperationType":"ADD","PicName":"a"}"#, "ProductId"),
            (
                r#"{"OperationType":"ADD","ProductId":"p","PicName":"a","IntAttr":3000000000}"#,
                "32-bit",
            ),
            (
                r#"{"OperationType":"ADD","ProductId":"p","PicName":"a","IntAttr":1.5}"#,
                "integer",
            ),
            (
                r#"{"OperationType":"ADD","ProductId":"p","PicName":"a","StrAttr":"a$"}"#,
                "may not contain",
            ),
            (
                r#"{"OperationType":"ADD","ProductId":"p","PicName":"a","Region":"1,2"}"#,
                "Region",
            ),
            (
                r#"{"OperationType":"ADD","ProductId":"p","PicName":"a","IntAtr":1}"#,
                "unknown field",
            ),
            (
                r#"{"OperationType":"ADD","ProductId":7,"PicName":"a"}"#,
                "string",
            ),
        ] {
            let e = parse_line(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let line = format!(
            r#"{{"OperationType":"ADD","ProductId":"p","PicName":"a","StrAttr":"{long}"}}"#
        );
        assert!(parse_line(&line)
            .unwrap_err()
            .to_string()
            .contains("longer"));
    }

    #[test]
    fn reasons_are_typed() {
        assert!(matches!(parse_line("[1]"), Err(LineError::NotObject)));
        assert!(matches!(
            parse_line(r#"{"OperationType":"ADD","PicName":"a"}"#),
            Err(LineError::Missing("ProductId"))
        ));
        assert!(matches!(
            parse_line(r#"{"OperationType":"ADD","ProductId":"p","PicName":"a","IntAttr2":1e12}"#),
            Err(LineError::NotInteger("IntAttr2"))
        ));
    }

    #[test]
    fn records_round_trip_through_lines() {
        let record = Record {
            product_id: "p\"1".into(),
            pic_name: "1.png".into(),
            category_id: 88888888,
            custom_content: Some("k:v".into()),
            int_attrs: [Some(5), None, None, Some(-1)],
            str_attrs: [None, Some("x".into()), None, None],
            region: Some("0,10,0,20".into()),
        };
        let text = to_line(&record);
        assert!(text.starts_with(r#"{"OperationType":"ADD","ProductId":"p\"1","PicName":"1.png","CategoryId":88888888,"CustomContent":"k:v","IntAttr":5"#), "{text}");
        assert!(!text.contains("IntAttr2"));
        let Operation::Add(add) = parse_line(&text).unwrap() else {
            panic!("not an add")
        };
        assert_eq!(add.product_id, record.product_id);
        assert_eq!(add.attributes.int_attrs, record.int_attrs);
        assert_eq!(add.attributes.str_attrs, record.str_attrs);
        assert_eq!(add.category_id, Some(88888888));
    }
}
