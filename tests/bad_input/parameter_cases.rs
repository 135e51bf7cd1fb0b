//! The bad requests of the bad-input catalogue: unknown actions, missing, duplicated and
//! out-of-range parameters, regions, filters, and instances or pictures that do not exist.

use super::{add_with, case, search_with, Case, GOOD_PRODUCT, INSTANCE};
use crate::common::{b64, picture};

/// Every parameter case: each must be refused with its vendor code.
pub(crate) fn cases() -> Vec<Case> {
    let good = b64(&picture(1));
    // Actions and parameters.
    let mut cases = vec![case(
        "unknown Action",
        "NoSuchAction",
        &[("InstanceName", INSTANCE)],
        404,
        "InvalidApi.NotFound",
    )];
    cases.push(case(
        "missing InstanceName",
        "SearchImageByPic",
        &[("PicContent", &good)],
        400,
        "MissingParameter",
    ));
    cases.push(case(
        "missing PicContent",
        "SearchImageByPic",
        &[("InstanceName", INSTANCE)],
        400,
        "MissingParameter",
    ));
    cases.push(search_with("empty PicContent", "", &[], "MissingParameter"));
    for p in ["ProductId", "PicName", "PicContent"] {
        cases.push(add_with(
            format!("AddImage without {p}"),
            &[(p, None)],
            "MissingParameter",
        ));
    }
    cases.push(case(
        "SearchImageByName without PicName",
        "SearchImageByName",
        &[("InstanceName", INSTANCE), ("ProductId", GOOD_PRODUCT)],
        400,
        "MissingParameter",
    ));
    cases.push(case(
        "DeleteImage without ProductId",
        "DeleteImage",
        &[("InstanceName", INSTANCE), ("PicName", "x.png")],
        400,
        "MissingParameter",
    ));
    cases.push(case(
        "UpdateImage without PicName",
        "UpdateImage",
        &[("InstanceName", INSTANCE), ("ProductId", GOOD_PRODUCT)],
        400,
        "MissingParameter",
    ));
    for (name, num, start, code) in [
        ("Num 0", "0", "0", "InvalidNumParameter"),
        ("Num -1", "-1", "0", "InvalidNumParameter"),
        ("Num not an integer", "ten", "0", "InvalidNumParameter"),
        ("Num 101", "101", "0", "OverflowMaxReturnNum"),
        (
            "Num huge",
            "99999999999999999999999",
            "0",
            "InvalidNumParameter",
        ),
        ("Start -1", "10", "-1", "InvalidStartParameter"),
        ("Start 500", "1", "500", "InvalidStartParameter"),
        ("Start not an integer", "10", "x", "InvalidStartParameter"),
        ("Start+Num over 500", "10", "495", "OverflowMaxResultNum"),
    ] {
        cases.push(search_with(
            name,
            &good,
            &[("Num", num), ("Start", start)],
            code,
        ));
    }
    let long = |n: usize| "x".repeat(n);
    cases.push(add_with(
        "ProductId of 513 characters",
        &[("ProductId", Some(&long(513)))],
        "InvalidProductId",
    ));
    cases.push(add_with(
        "PicName of 513 characters",
        &[("PicName", Some(&long(513)))],
        "InvalidPicName",
    ));
    cases.push(add_with(
        "CustomContent of 4097 characters",
        &[("CustomContent", Some(&long(4097)))],
        "InvalidCustomContent",
    ));
    cases.push(add_with(
        "StrAttr of 129 characters",
        &[("StrAttr", Some(&long(129)))],
        "InvalidStrAttr",
    ));
    cases.push(add_with(
        "IntAttr not an integer",
        &[("IntAttr", Some("one"))],
        "InvalidIntAttr",
    ));
    for bad in ["a$b", "a&b", "a%b", "a\\b", "a¥b", "a\u{7}b"] {
        cases.push(add_with(
            format!("StrAttr with forbidden character {bad:?}"),
            &[("StrAttr", Some(bad))],
            "InvalidStrAttr",
        ));
    }
    cases.push(add_with(
        "ProductId with a control character",
        &[("ProductId", Some("p\u{0}1"))],
        "InvalidProductId",
    ));
    cases.push(add_with(
        "PicName with a newline",
        &[("PicName", Some("a\nb.png"))],
        "InvalidPicName",
    ));
    cases.push(add_with(
        "CategoryId unknown",
        &[("CategoryId", Some("12345"))],
        "InvalidCategory",
    ));

    // Region.
    for region in [
        "a,b,c,d",
        "1,2,3",
        "1,2,3,4,5",
        "150,10,10,120",
        "0,5000,0,5000",
        "-1,100,0,100",
        ",,,",
        "1.5,100,0,100",
        "99999999999999999999,1,1,1",
    ] {
        cases.push(search_with(
            format!("Region {region:?}"),
            &good,
            &[("Region", region)],
            "InvalidRegion",
        ));
    }

    // Filter.
    let overlong = format!("int_attr=1{}", " OR int_attr=1".repeat(24));
    let deep = format!("{}int_attr=1{}", "(".repeat(200), ")".repeat(200));
    for filter in [
        "int_attr>>1",
        "price=1",
        "str_attr>\"a\"",
        "str_attr=\"abc",
        "int_attr=1 AND",
        "(int_attr=1",
        "int_attr=1)",
        "int_attr=99999999999999999999",
        "int_attr=\"1\"",
        "\u{0}",
        overlong.as_str(),
        &deep[..250],
    ] {
        cases.push(search_with(
            format!("Filter {:?}", &filter[..filter.len().min(40)]),
            &good,
            &[("Filter", filter)],
            "InvalidFilterClause",
        ));
    }
    cases.push(case(
        "SearchImageByFilter with an overlong Filter",
        "SearchImageByFilter",
        &[("InstanceName", INSTANCE), ("Filter", &overlong)],
        400,
        "InvalidFilterClause",
    ));
    let nested = format!("{}int_attr=1{}", "(".repeat(2000), ")".repeat(2000));
    cases.push(case(
        "DeleteImage by a Filter nested 2000 deep",
        "DeleteImage",
        &[
            ("InstanceName", INSTANCE),
            ("IsDeleteByFilter", "true"),
            ("Filter", &nested),
        ],
        400,
        "InvalidFilterClause",
    ));
    cases.push(case(
        "DeleteImage by a malformed Filter",
        "DeleteImage",
        &[
            ("InstanceName", INSTANCE),
            ("IsDeleteByFilter", "true"),
            ("Filter", "int_attr=="),
        ],
        400,
        "InvalidFilterClause",
    ));

    // Instances and pictures.
    cases.push(search_with(
        "unknown instance",
        &good,
        &[("InstanceName", "nosuchinstance")],
        "InvalidInstance",
    ));
    // search_with puts InstanceName first; the override above duplicates it, so build
    // these by hand.
    cases.pop();
    cases.push(case(
        "unknown instance",
        "SearchImageByPic",
        &[("InstanceName", "nosuchinstance"), ("PicContent", &good)],
        400,
        "InvalidInstance",
    ));
    cases.push(case(
        "instance name of 21 characters",
        "SearchImageByPic",
        &[("InstanceName", &"i".repeat(21)), ("PicContent", &good)],
        400,
        "InvalidInstance",
    ));
    cases.push(case(
        "instance name with a path",
        "Detail",
        &[("InstanceName", "../../etc")],
        400,
        "InvalidInstance",
    ));
    cases.push(case(
        "SearchImageByName of a non-existent picture",
        "SearchImageByName",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "nope"),
            ("PicName", "nope.png"),
        ],
        400,
        "PicNotExist",
    ));
    cases.push(case(
        "UpdateImage of a non-existent picture",
        "UpdateImage",
        &[
            ("InstanceName", INSTANCE),
            ("ProductId", "nope"),
            ("PicName", "nope.png"),
            ("IntAttr", "3"),
        ],
        400,
        "PicNotExist",
    ));
    cases
}
