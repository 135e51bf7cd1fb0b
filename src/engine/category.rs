//! Service types and the vendor's product categories.

/// The "Others" category, and the only category of non-product instances.
pub const CATEGORY_OTHER: u32 = 88_888_888;

/// Product search categories (id, name) as the vendor lists them in AllCategories.
pub const PRODUCT_CATEGORIES: [(u32, &str); 14] = [
    (0, "Tops"),
    (1, "Dress"),
    (2, "Bottoms"),
    (3, "Bag"),
    (4, "Shoes"),
    (5, "Accessories"),
    (6, "Snack"),
    (7, "Makeup"),
    (8, "Bottle"),
    (9, "Furniture"),
    (20, "Toy"),
    (21, "Underwear"),
    (22, "Digital device"),
    (CATEGORY_OTHER, "Other"),
];

/// What an instance searches, as the vendor numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    /// 0: product search (categories, subject detection).
    Product,
    /// 1: generic search.
    Generic,
    /// 2: fabric search.
    Fabric,
    /// 3: trademark search.
    Trademark,
    /// 4: copyright search.
    Copyright,
    /// 5: furniture search.
    Furniture,
    /// 6: hardware search.
    Hardware,
}

impl ServiceType {
    /// The vendor's number.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// From the vendor's number.
    pub fn from_code(code: u8) -> Option<Self> {
        use ServiceType::*;
        [
            Product, Generic, Fabric, Trademark, Copyright, Furniture, Hardware,
        ]
        .get(code as usize)
        .copied()
    }

    /// The name the command line and the admin routes use (`product`, `generic`, ...).
    pub fn name(self) -> &'static str {
        use ServiceType::*;
        match self {
            Product => "product",
            Generic => "generic",
            Fabric => "fabric",
            Trademark => "trademark",
            Copyright => "copyright",
            Furniture => "furniture",
            Hardware => "hardware",
        }
    }

    /// From a name as typed on the command line (`product`, `generic`, ... or a number).
    pub fn parse(text: &str) -> Option<Self> {
        use ServiceType::*;
        let t = text.trim().to_ascii_lowercase();
        if let Ok(n) = t.parse::<u8>() {
            return Self::from_code(n);
        }
        Some(match t.as_str() {
            "product" => Product,
            "generic" => Generic,
            "fabric" => Fabric,
            "trademark" => Trademark,
            "copyright" => Copyright,
            "furniture" => Furniture,
            "hardware" => Hardware,
            _ => return None,
        })
    }

    /// Smallest picture side accepted, in pixels.
    pub fn min_side(self) -> u32 {
        match self {
            ServiceType::Trademark => 200,
            ServiceType::Fabric => 448,
            _ => 100,
        }
    }

    /// Categories (id, name) of this service type.
    pub fn categories(self) -> &'static [(u32, &'static str)] {
        match self {
            ServiceType::Product => &PRODUCT_CATEGORIES,
            _ => &PRODUCT_CATEGORIES[PRODUCT_CATEGORIES.len() - 1..],
        }
    }

    /// Whether pictures carry a meaningful category.
    pub fn has_categories(self) -> bool {
        self == ServiceType::Product
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_codes() {
        assert_eq!(ServiceType::parse("Product"), Some(ServiceType::Product));
        assert_eq!(ServiceType::parse("3"), Some(ServiceType::Trademark));
        assert_eq!(ServiceType::parse("7"), None);
        assert_eq!(ServiceType::parse("nope"), None);
        assert_eq!(ServiceType::Fabric.code(), 2);
        assert_eq!(ServiceType::Fabric.min_side(), 448);
        assert_eq!(
            ServiceType::Generic.categories(),
            &[(CATEGORY_OTHER, "Other")]
        );
        assert_eq!(ServiceType::Product.categories().len(), 14);
        for code in 0..7 {
            let t = ServiceType::from_code(code).unwrap();
            assert_eq!(ServiceType::parse(t.name()), Some(t), "names parse back");
        }
    }
}
