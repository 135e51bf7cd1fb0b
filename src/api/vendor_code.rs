//! The vendor's error codes, the strings a client sees in `Code` and the official SDKs
//! raise as `ClientException` / `ServerException` codes.
//!
//! Every failure of the API names one of these; the strings are written here and only
//! here, so a code cannot be misspelt at a call site and the list of what this server
//! can answer is one enum. Which failure gets which code and status is decided in
//! [`super::error`], the one table; a few parameter checks name theirs directly (an
//! integer parameter that is not one, an attribute out of range).

use std::fmt;

/// One vendor error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VendorCode {
    /// 400: the request is malformed (a parameter of the wrong form, given twice, ...).
    BadRequest,
    /// 400: a required parameter is absent.
    MissingParameter,
    /// 400: a parameter of the admin routes has a value out of range.
    InvalidParameter,
    /// 400: no instance of that name.
    InvalidInstance,
    /// 400: CategoryId is not a category of the instance's service type.
    InvalidCategory,
    /// 400: Num is not an integer in 1..=100.
    InvalidNumParameter,
    /// 400: Start is not an integer in 0..=499.
    InvalidStartParameter,
    /// 400: Num over 100.
    OverflowMaxReturnNum,
    /// 400: Start + Num over 500.
    OverflowMaxResultNum,
    /// 400: Filter does not parse or is too long.
    InvalidFilterClause,
    /// 400: Region is not a box inside the picture.
    InvalidRegion,
    /// 400: the picture is over 4 MB, not base64, or does not decode.
    InvalidPicContent,
    /// 400: the picture's format is not one the vendor takes.
    UnsupportedPicFormat,
    /// 400: a side of the picture is outside 100..4096 pixels.
    UnsupportedPicPixels,
    /// 400: the picture's EXIF orientation is not upright.
    IncorrectOrientation,
    /// 400: no picture of that ProductId and PicName.
    PicNotExist,
    /// 400: ProductId absent or too long.
    InvalidProductId,
    /// 400: PicName absent or too long.
    InvalidPicName,
    /// 400: CustomContent too long.
    InvalidCustomContent,
    /// 400: IntAttr out of range.
    InvalidIntAttr,
    /// 400: IntAttr2 out of range.
    InvalidIntAttr2,
    /// 400: IntAttr3 out of range.
    InvalidIntAttr3,
    /// 400: IntAttr4 out of range.
    InvalidIntAttr4,
    /// 400: StrAttr too long or with a forbidden character.
    InvalidStrAttr,
    /// 400: StrAttr2 too long or with a forbidden character.
    InvalidStrAttr2,
    /// 400: StrAttr3 too long or with a forbidden character.
    InvalidStrAttr3,
    /// 400: StrAttr4 too long or with a forbidden character.
    InvalidStrAttr4,
    /// 400: the instance holds its capacity of pictures.
    InstanceOverQuota,
    /// 409: an instance of that name exists.
    InstanceNameAlreadyExist,
    /// 400: the signature does not match the request.
    SignatureDoesNotMatch,
    /// 400: the request's timestamp is too old or too far ahead.
    InvalidTimeStampExpired,
    /// 400: the signature nonce was used before.
    SignatureNonceUsed,
    /// 403: the key may not do this, or the peer is not allowed.
    NoPermission,
    /// 403: throttled; retry after `x-acs-retry-after`.
    DeniedRequest,
    /// 404: no access key of that id.
    InvalidAccessKeyIdNotFound,
    /// 404: no such Action or path.
    InvalidApiNotFound,
    /// 409: a task of that kind already runs on the instance.
    ConsoleTaskAlreadyExist,
    /// 500: the server failed.
    InternalError,
    /// 500: an Action the vendor lists that this server does not offer.
    UnsupportedOperationType,
}

impl VendorCode {
    /// The code as the vendor spells it.
    pub fn as_str(self) -> &'static str {
        use VendorCode::*;
        match self {
            BadRequest => "BadRequest",
            MissingParameter => "MissingParameter",
            InvalidParameter => "InvalidParameter",
            InvalidInstance => "InvalidInstance",
            InvalidCategory => "InvalidCategory",
            InvalidNumParameter => "InvalidNumParameter",
            InvalidStartParameter => "InvalidStartParameter",
            OverflowMaxReturnNum => "OverflowMaxReturnNum",
            OverflowMaxResultNum => "OverflowMaxResultNum",
            InvalidFilterClause => "InvalidFilterClause",
            InvalidRegion => "InvalidRegion",
            InvalidPicContent => "InvalidPicContent",
            UnsupportedPicFormat => "UnsupportedPicFormat",
            UnsupportedPicPixels => "UnsupportedPicPixels",
            IncorrectOrientation => "IncorrectOrientation",
            PicNotExist => "PicNotExist",
            InvalidProductId => "InvalidProductId",
            InvalidPicName => "InvalidPicName",
            InvalidCustomContent => "InvalidCustomContent",
            InvalidIntAttr => "InvalidIntAttr",
            InvalidIntAttr2 => "InvalidIntAttr2",
            InvalidIntAttr3 => "InvalidIntAttr3",
            InvalidIntAttr4 => "InvalidIntAttr4",
            InvalidStrAttr => "InvalidStrAttr",
            InvalidStrAttr2 => "InvalidStrAttr2",
            InvalidStrAttr3 => "InvalidStrAttr3",
            InvalidStrAttr4 => "InvalidStrAttr4",
            InstanceOverQuota => "InstanceOverQuota",
            InstanceNameAlreadyExist => "InstanceNameAlreadyExist",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            InvalidTimeStampExpired => "InvalidTimeStamp.Expired",
            SignatureNonceUsed => "SignatureNonceUsed",
            NoPermission => "NoPermission",
            DeniedRequest => "DeniedRequest",
            InvalidAccessKeyIdNotFound => "InvalidAccessKeyId.NotFound",
            InvalidApiNotFound => "InvalidApi.NotFound",
            ConsoleTaskAlreadyExist => "Console.TaskAlreadyExist",
            InternalError => "InternalError",
            UnsupportedOperationType => "UnsupportedOperationType",
        }
    }
}

impl fmt::Display for VendorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for VendorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

// Tests and callers compare with the string a client sees.
impl PartialEq<&str> for VendorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<VendorCode> for &str {
    fn eq(&self, other: &VendorCode) -> bool {
        *self == other.as_str()
    }
}
