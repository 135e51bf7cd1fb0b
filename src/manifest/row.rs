//! One row of a part: the input row of a picture and what extraction made of it.

use crate::store::Record;

/// A picture's row: the input fields, then the extraction's outputs (all `None` but
/// `error` when the picture could not be used).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartRow {
    /// ProductId.
    pub product_id: String,
    /// PicName.
    pub pic_name: String,
    /// The picture file or URI read.
    pub path: String,
    /// CustomContent.
    pub custom_content: Option<String>,
    /// IntAttr..IntAttr4.
    pub int_attrs: [Option<i32>; 4],
    /// StrAttr..StrAttr4.
    pub str_attrs: [Option<String>; 4],
    /// Whether the subject was detected.
    pub crop: bool,
    /// The region given (`x1,x2,y1,y2`).
    pub region: Option<String>,
    /// The category given, or decided by the picture alone; `None`: to be predicted.
    pub category_id: Option<u32>,
    /// Where the vector was taken from (`x1,x2,y1,y2`, the record's Region).
    pub subject_region: Option<String>,
    /// The extractor's raw vector (before any whitening).
    pub vector: Option<Vec<f32>>,
    /// Stored form of the local features.
    pub local_features: Option<Vec<u8>>,
    /// JPEG preview.
    pub thumbnail: Option<Vec<u8>>,
    /// Why the picture could not be used.
    pub error: Option<String>,
}

impl PartRow {
    /// The record AddImage would store for this row, with `category_id` (the row's own,
    /// or the one predicted when it has none).
    pub fn record(&self, category_id: u32) -> Record {
        Record {
            product_id: self.product_id.clone(),
            pic_name: self.pic_name.clone(),
            category_id,
            custom_content: self.custom_content.clone(),
            int_attrs: self.int_attrs,
            str_attrs: self.str_attrs.clone(),
            region: self.subject_region.clone(),
        }
    }
}
