//! The vendor's limits on parameter values, each failing with its own code.

use super::error::ApiError;
use super::params::Params;
use crate::api::VendorCode;
use crate::engine::{Attributes, SearchQuery};
use crate::filter::Expr;
use crate::vision::Region;

/// Longest ProductId and PicName, in characters.
pub const MAX_NAME_CHARS: usize = 512;
/// Longest CustomContent, in characters.
pub const MAX_CUSTOM_CONTENT_CHARS: usize = 4096;
/// Longest StrAttr, in characters.
pub const MAX_STR_ATTR_CHARS: usize = 128;
/// Characters a StrAttr may not contain.
pub const STR_ATTR_FORBIDDEN: [char; 5] = ['\\', '¥', '$', '&', '%'];
/// Longest Filter in a search, in characters.
pub const MAX_SEARCH_FILTER_CHARS: usize = 256;
/// Longest Filter in a delete, in characters.
pub const MAX_DELETE_FILTER_CHARS: usize = 4096;
/// Largest decoded picture.
pub const MAX_PICTURE_BYTES: usize = 4 * 1024 * 1024;

// The body cap is derived from the worst legal request, not guessed: the vendor allows a
// 4 MB picture, its base64 is 4/3 as long, and form encoding (what the official SDKs send)
// turns every `+` and `/` of that base64 into three bytes (`%2B`, `%2F`). A picture whose
// base64 is mostly `/` is common: white pixels (`0xFF`) encode to `////`, so a product shot
// on white nearly triples.

/// Base64 length of the largest picture the vendor accepts.
const MAX_PICTURE_BASE64: usize = MAX_PICTURE_BYTES.div_ceil(3) * 4;

/// Room for every parameter besides the picture, each at its limit and fully
/// percent-encoded (CustomContent 4,096 characters of up to 4 UTF-8 bytes, each `%XX`,
/// is 48 KiB; filters, names and attributes add less than as much again).
const OTHER_PARAMETERS_BYTES: usize = 1024 * 1024;

/// Largest request body read: a 4 MB picture's base64 with every character
/// percent-encoded, plus every other parameter (~17.8 MB).
pub const MAX_BODY_BYTES: usize = 3 * MAX_PICTURE_BASE64 + OTHER_PARAMETERS_BYTES;

// The cap stays bounded, with room for CustomContent at its limit beside the picture.
const _: () = assert!(MAX_BODY_BYTES < 20 * 1024 * 1024);
const _: () = assert!(OTHER_PARAMETERS_BYTES >= 12 * 4096);

/// Results per page at most.
pub const MAX_NUM: i64 = 100;
/// First result index at most.
pub const MAX_START: i64 = 499;
/// Start + Num at most.
pub const MAX_RESULTS: i64 = 500;

const INT_ATTR_NAMES: [&str; 4] = ["IntAttr", "IntAttr2", "IntAttr3", "IntAttr4"];
const STR_ATTR_NAMES: [&str; 4] = ["StrAttr", "StrAttr2", "StrAttr3", "StrAttr4"];
const INT_ATTR_CODES: [VendorCode; 4] = [
    VendorCode::InvalidIntAttr,
    VendorCode::InvalidIntAttr2,
    VendorCode::InvalidIntAttr3,
    VendorCode::InvalidIntAttr4,
];
const STR_ATTR_CODES: [VendorCode; 4] = [
    VendorCode::InvalidStrAttr,
    VendorCode::InvalidStrAttr2,
    VendorCode::InvalidStrAttr3,
    VendorCode::InvalidStrAttr4,
];

/// A required ProductId or PicName within length.
pub fn name(params: &Params, param: &str, code: VendorCode) -> Result<String, ApiError> {
    let value = params.required(param)?;
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid(
            code,
            format!("{param} is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            code,
            format!("{param} contains control characters"),
        ));
    }
    Ok(value.to_string())
}

/// CustomContent and IntAttr..4, StrAttr..4.
pub fn attributes(params: &Params) -> Result<Attributes, ApiError> {
    let custom_content = params.optional("CustomContent").map(str::to_string);
    if custom_content
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_CUSTOM_CONTENT_CHARS)
    {
        return Err(ApiError::invalid(
            VendorCode::InvalidCustomContent,
            format!("CustomContent is longer than {MAX_CUSTOM_CONTENT_CHARS} characters"),
        ));
    }
    let mut attributes = Attributes {
        custom_content,
        ..Attributes::default()
    };
    for i in 0..4 {
        let (name, code) = (INT_ATTR_NAMES[i], INT_ATTR_CODES[i]);
        if let Some(v) = params.integer(name, code)? {
            let v = i32::try_from(v).map_err(|_| {
                ApiError::invalid(
                    code,
                    format!("{name} must fit a 32-bit signed integer, got {v}"),
                )
            })?;
            attributes.int_attrs[i] = Some(v);
        }
        let (name, code) = (STR_ATTR_NAMES[i], STR_ATTR_CODES[i]);
        if let Some(v) = params.optional(name) {
            if v.chars().count() > MAX_STR_ATTR_CHARS {
                return Err(ApiError::invalid(
                    code,
                    format!("{name} is longer than {MAX_STR_ATTR_CHARS} characters"),
                ));
            }
            if let Some(c) = v
                .chars()
                .find(|c| STR_ATTR_FORBIDDEN.contains(c) || c.is_control())
            {
                return Err(ApiError::invalid(
                    code,
                    format!("{name} may not contain {c:?}"),
                ));
            }
            attributes.str_attrs[i] = Some(v.to_string());
        }
    }
    Ok(attributes)
}

/// CategoryId, if given.
pub fn category(params: &Params) -> Result<Option<u32>, ApiError> {
    match params.integer("CategoryId", VendorCode::InvalidCategory)? {
        None => Ok(None),
        Some(c) => u32::try_from(c).map(Some).map_err(|_| {
            ApiError::invalid(
                VendorCode::InvalidCategory,
                format!("CategoryId {c} does not exist"),
            )
        }),
    }
}

/// Region `x1,x2,y1,y2`, if given.
pub fn region(params: &Params) -> Result<Option<Region>, ApiError> {
    params
        .optional("Region")
        .map(|r| Region::parse(r).map_err(ApiError::from))
        .transpose()
}

/// Num, Start, ScoreThreshold, DistinctProductId and CategoryId of a search.
pub fn search_query(params: &Params) -> Result<SearchQuery, ApiError> {
    let num = params
        .integer("Num", VendorCode::InvalidNumParameter)?
        .unwrap_or(10);
    if num > MAX_NUM {
        return Err(ApiError::invalid(
            VendorCode::OverflowMaxReturnNum,
            format!("Num {num} is over the maximum of {MAX_NUM}"),
        ));
    }
    if num < 1 {
        return Err(ApiError::invalid(
            VendorCode::InvalidNumParameter,
            format!("Num must be 1 to {MAX_NUM}, got {num}"),
        ));
    }
    let start = params
        .integer("Start", VendorCode::InvalidStartParameter)?
        .unwrap_or(0);
    if !(0..=MAX_START).contains(&start) {
        return Err(ApiError::invalid(
            VendorCode::InvalidStartParameter,
            format!("Start must be 0 to {MAX_START}, got {start}"),
        ));
    }
    if start + num > MAX_RESULTS {
        return Err(ApiError::invalid(
            VendorCode::OverflowMaxResultNum,
            format!(
                "Start + Num is {}, over the maximum of {MAX_RESULTS}",
                start + num
            ),
        ));
    }
    let min_score = match params.optional("ScoreThreshold") {
        None => 0.0,
        Some(t) => match t.trim().parse::<f32>() {
            Ok(v) if (0.0..=1.0).contains(&v) => v,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "ScoreThreshold must be a number from 0.00 to 1.00, got {t:?}"
                )))
            }
        },
    };
    Ok(SearchQuery {
        category_id: category(params)?,
        start: start as usize,
        num: num as usize,
        min_score,
        distinct_product: params.boolean("DistinctProductId", false)?,
        filter: filter(params, MAX_SEARCH_FILTER_CHARS)?,
        // Not a vendor parameter; too costly per query to be on by default yet.
        scene_windows: false,
        scene_proposals: false,
        exhaustive: false,
        query_expansion: 0,
        // The instance's (`serve --reciprocal-rerank`).
        reciprocal: None,
        keep_first: false,
    })
}

/// Filter, if given, parsed (InvalidFilterClause with the position and reason otherwise).
pub fn filter(params: &Params, max_chars: usize) -> Result<Option<Expr>, ApiError> {
    match params.optional("Filter") {
        None => Ok(None),
        Some(text) => crate::filter::parse(text, max_chars)
            .map(Some)
            .map_err(ApiError::from),
    }
}

/// Num and Start of a paged listing (SearchImageByFilter), with the search limits.
pub fn page(params: &Params) -> Result<(usize, usize), ApiError> {
    let q = search_query(&Params::from_pairs(
        ["Num", "Start"]
            .into_iter()
            .filter_map(|n| params.optional(n).map(|v| (n, v))),
    ))?;
    Ok((q.start, q.num))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(pairs: &[(&str, &str)]) -> &'static str {
        search_query(&Params::from_pairs(pairs.iter().copied()))
            .map_or_else(|e| e.code.as_str(), |_| "ok")
    }

    #[test]
    fn num_and_start_limits() {
        assert_eq!(code_of(&[]), "ok");
        assert_eq!(code_of(&[("Num", "100"), ("Start", "400")]), "ok");
        assert_eq!(code_of(&[("Num", "101")]), "OverflowMaxReturnNum");
        assert_eq!(code_of(&[("Num", "0")]), "InvalidNumParameter");
        assert_eq!(code_of(&[("Num", "ten")]), "InvalidNumParameter");
        assert_eq!(code_of(&[("Start", "500")]), "InvalidStartParameter");
        assert_eq!(code_of(&[("Start", "-1")]), "InvalidStartParameter");
        assert_eq!(
            code_of(&[("Start", "499"), ("Num", "2")]),
            "OverflowMaxResultNum"
        );
        assert_eq!(code_of(&[("ScoreThreshold", "1.5")]), "BadRequest");
        assert_eq!(code_of(&[("CategoryId", "x")]), "InvalidCategory");
        assert_eq!(code_of(&[("Filter", "int_attr>")]), "InvalidFilterClause");
        assert_eq!(
            code_of(&[("Filter", "int_attr>1 AND str_attr=\"a\"")]),
            "ok"
        );
        let long = format!("int_attr>1{}", " ".repeat(300));
        assert_eq!(code_of(&[("Filter", long.as_str())]), "InvalidFilterClause");
    }

    #[test]
    fn attribute_limits() {
        let long = "x".repeat(129);
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("IntAttr", "2147483648")], "InvalidIntAttr"),
            (vec![("IntAttr3", "1.5")], "InvalidIntAttr3"),
            (vec![("StrAttr2", "a$b")], "InvalidStrAttr2"),
            (vec![("StrAttr4", &long)], "InvalidStrAttr4"),
        ];
        for (pairs, code) in cases {
            assert_eq!(
                attributes(&Params::from_pairs(pairs)).unwrap_err().code,
                code
            );
        }
        let ok = attributes(&Params::from_pairs([
            ("IntAttr2", "-7"),
            ("StrAttr", "红色"),
        ]))
        .unwrap();
        assert_eq!(ok.int_attrs, [None, Some(-7), None, None]);
        assert_eq!(ok.str_attrs[0].as_deref(), Some("红色"));
        let big = "c".repeat(4097);
        assert_eq!(
            attributes(&Params::from_pairs([("CustomContent", big.as_str())]))
                .unwrap_err()
                .code,
            "InvalidCustomContent"
        );
    }
}
