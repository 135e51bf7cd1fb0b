//! `InstanceSummary`: an instance's settings and counts as the admin routes report them
//! and the CLI prints them, online or offline (one shape, so both print the same table).

use serde::{Deserialize, Serialize};

use super::category::ServiceType;
use super::instance::Instance;

/// An instance's settings and picture count (`/admin/instances`, `imgsearch instance list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceSummary {
    /// Instance name.
    pub name: String,
    /// Service type by name (`product`, `generic`, ...).
    pub service_type: String,
    /// Searches per second allowed (0 = unlimited).
    pub qps: u32,
    /// Pictures it may hold.
    pub capacity: u64,
    /// Extractor name and version (`builtin-v2`, `onnx-v1`).
    pub extractor: String,
    /// The extractor's vector dimension.
    pub dimension: u32,
    /// Whether pictures keep local features (searches re-rank with them).
    pub local_features: bool,
    /// Pictures it holds.
    pub pictures: u64,
    /// Whether its rows go through a fitted whitening.
    pub whitened: bool,
}

impl Instance {
    /// Settings and picture count as the admin routes report them.
    pub fn summary(&self) -> InstanceSummary {
        let info = self.info();
        let meta = info.meta;
        InstanceSummary {
            service_type: ServiceType::from_code(meta.service_type)
                .map_or_else(|| meta.service_type.to_string(), |t| t.name().to_string()),
            name: meta.name,
            qps: meta.qps,
            capacity: meta.capacity,
            extractor: meta.extractor,
            dimension: meta.dimension,
            local_features: meta.local_features,
            pictures: info.total_count,
            whitened: self.whitening().is_some(),
        }
    }
}

/// The `imgsearch instance list` table: a header line and one line per instance.
pub fn summary_table(rows: &[InstanceSummary]) -> String {
    let mut out = format!(
        "{:<20} {:<10} {:>5} {:>10} {:>10}  extractor\n",
        "name", "service", "qps", "capacity", "pictures"
    );
    for r in rows {
        let mut extractor = format!("{} ({} dimensions", r.extractor, r.dimension);
        if r.local_features {
            extractor.push_str(", local features");
        }
        if r.whitened {
            extractor.push_str(", whitened");
        }
        extractor.push(')');
        out.push_str(&format!(
            "{:<20} {:<10} {:>5} {:>10} {:>10}  {extractor}\n",
            r.name, r.service_type, r.qps, r.capacity, r.pictures
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_round_trip_through_json_and_print_one_line_each() {
        let row = InstanceSummary {
            name: "shoes".into(),
            service_type: "product".into(),
            qps: 0,
            capacity: 1_000_000,
            extractor: "builtin-v2".into(),
            dimension: 256,
            local_features: true,
            pictures: 42,
            whitened: false,
        };
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["ServiceType"], "product");
        assert_eq!(json["LocalFeatures"], true);
        assert_eq!(json["Pictures"], 42);
        let back: InstanceSummary = serde_json::from_value(json).unwrap();
        assert_eq!(back, row);
        let table = summary_table(&[row]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("shoes "));
        assert!(
            lines[1].contains("builtin-v2 (256 dimensions, local features)"),
            "{table}"
        );
    }
}
