//! Product category from an ImageNet classifier's output (models that have one, such as
//! `mobilenet_v2_1.0_224.onnx` with its `probabilities` output).
//!
//! About 180 of the 1000 ImageNet classes are products of one of the vendor's
//! categories (a running shoe is Shoes, a water bottle is Bottle, a banana is
//! Snack). Their probabilities are summed per category; the best category wins
//! when it holds at least [`MIN_MASS`] of the probability mass. Otherwise the
//! picture shows nothing the classifier recognises as a product and the caller
//! falls back to the nearest-neighbour vote. Class numbers follow the 1001-line
//! `imagenet_labels.txt` (0 = background); a 1000-class output is shifted by one.

/// Probability mass a category needs to be trusted over the neighbour vote.
const MIN_MASS: f32 = 0.3;

/// (class in the 1001-class numbering, product category id), sorted by class.
const CLASSES: &[(u16, u32)] = &[
    (400, 0),  // abaya -> Tops
    (415, 3),  // backpack -> Bag
    (416, 6),  // bakery -> Snack
    (418, 20), // balloon -> Toy
    (424, 9),  // barber chair -> Furniture
    (431, 20), // basketball -> Toy
    (432, 9),  // bassinet -> Furniture
    (441, 8),  // beer bottle -> Bottle
    (442, 8),  // beer glass -> Bottle
    (446, 21), // bikini -> Underwear
    (452, 5),  // bolo tie -> Accessories
    (453, 5),  // bonnet -> Accessories
    (454, 9),  // bookcase -> Furniture
    (458, 5),  // bow tie -> Accessories
    (460, 21), // brassiere -> Underwear
    (465, 5),  // buckle -> Accessories
    (475, 0),  // cardigan -> Tops
    (479, 6),  // carton -> Snack
    (483, 22), // cassette player -> Digital device
    (486, 22), // CD player -> Digital device
    (488, 22), // cellular telephone -> Digital device
    (493, 9),  // chest -> Furniture
    (494, 9),  // chiffonier -> Furniture
    (496, 9),  // china cabinet -> Furniture
    (502, 0),  // cloak -> Tops
    (503, 4),  // clog -> Shoes
    (505, 8),  // coffee mug -> Bottle
    (509, 22), // computer keyboard -> Digital device
    (510, 6),  // confectionery -> Snack
    (515, 4),  // cowboy boot -> Shoes
    (516, 5),  // cowboy hat -> Accessories
    (517, 9),  // cradle -> Furniture
    (521, 9),  // crib -> Furniture
    (527, 9),  // desk -> Furniture
    (528, 22), // desktop computer -> Digital device
    (529, 22), // dial telephone -> Digital device
    (530, 21), // diaper -> Underwear
    (531, 22), // digital clock -> Digital device
    (532, 5),  // digital watch -> Accessories
    (533, 9),  // dining table -> Furniture
    (549, 9),  // entertainment center -> Furniture
    (552, 7),  // face powder -> Makeup
    (554, 9),  // file -> Furniture
    (560, 9),  // folding chair -> Furniture
    (565, 9),  // four-poster -> Furniture
    (569, 0),  // fur coat -> Tops
    (573, 8),  // goblet -> Bottle
    (575, 20), // golf ball -> Toy
    (579, 1),  // gown -> Dress
    (583, 6),  // grocery store -> Snack
    (585, 5),  // hair slide -> Accessories
    (586, 7),  // hair spray -> Makeup
    (591, 22), // hand-held computer -> Digital device
    (593, 22), // hard disc -> Digital device
    (602, 1),  // hoopskirt -> Dress
    (606, 22), // iPod -> Digital device
    (609, 2),  // jean -> Bottoms
    (611, 0),  // jersey -> Tops
    (612, 20), // jigsaw puzzle -> Toy
    (614, 22), // joystick -> Digital device
    (615, 0),  // kimono -> Tops
    (618, 0),  // lab coat -> Tops
    (620, 9),  // lampshade -> Furniture
    (621, 22), // laptop -> Digital device
    (630, 7),  // lipstick -> Makeup
    (631, 4),  // Loafer -> Shoes
    (632, 7),  // lotion -> Makeup
    (633, 22), // loudspeaker -> Digital device
    (637, 3),  // mailbag -> Bag
    (639, 21), // maillot -> Underwear
    (640, 21), // maillot -> Underwear
    (648, 8),  // measuring cup -> Bottle
    (649, 9),  // medicine chest -> Furniture
    (651, 22), // microphone -> Digital device
    (656, 1),  // miniskirt -> Dress
    (659, 5),  // mitten -> Accessories
    (663, 22), // modem -> Digital device
    (665, 22), // monitor -> Digital device
    (674, 22), // mouse -> Digital device
    (680, 5),  // necklace -> Accessories
    (682, 22), // notebook -> Digital device
    (690, 1),  // overskirt -> Dress
    (693, 6),  // packet -> Snack
    (698, 0),  // pajama -> Tops
    (704, 9),  // park bench -> Furniture
    (712, 7),  // perfume -> Makeup
    (720, 20), // piggy bank -> Toy
    (721, 8),  // pill bottle -> Bottle
    (722, 9),  // pillow -> Furniture
    (724, 20), // pinwheel -> Toy
    (726, 8),  // pitcher -> Bottle
    (729, 3),  // plastic bag -> Bag
    (733, 22), // Polaroid camera -> Digital device
    (736, 0),  // poncho -> Tops
    (738, 8),  // pop bottle -> Bottle
    (743, 22), // printer -> Digital device
    (746, 22), // projector -> Digital device
    (747, 20), // puck -> Toy
    (749, 3),  // purse -> Bag
    (751, 9),  // quilt -> Furniture
    (755, 22), // radio -> Digital device
    (760, 22), // reflex camera -> Digital device
    (762, 22), // remote control -> Digital device
    (766, 9),  // rocking chair -> Furniture
    (769, 20), // rugby ball -> Toy
    (771, 4),  // running shoe -> Shoes
    (774, 8),  // saltshaker -> Bottle
    (775, 4),  // sandal -> Shoes
    (776, 1),  // sarong -> Dress
    (783, 22), // screen -> Digital device
    (791, 3),  // shopping basket -> Bag
    (806, 20), // soccer ball -> Toy
    (807, 4),  // sock -> Shoes
    (809, 5),  // sombrero -> Accessories
    (811, 22), // space bar -> Digital device
    (825, 5),  // stole -> Accessories
    (832, 9),  // studio couch -> Furniture
    (835, 0),  // suit -> Tops
    (837, 5),  // sunglass -> Accessories
    (838, 5),  // sunglasses -> Accessories
    (839, 7),  // sunscreen -> Makeup
    (842, 0),  // sweatshirt -> Tops
    (843, 21), // swimming trunks -> Underwear
    (847, 9),  // table lamp -> Furniture
    (849, 22), // tape player -> Digital device
    (851, 20), // teddy -> Toy
    (852, 22), // television -> Digital device
    (853, 20), // tennis ball -> Toy
    (858, 9),  // throne -> Furniture
    (866, 20), // toyshop -> Toy
    (870, 0),  // trench coat -> Tops
    (879, 22), // typewriter keyboard -> Digital device
    (880, 5),  // umbrella -> Accessories
    (891, 20), // volleyball -> Toy
    (894, 5),  // wallet -> Accessories
    (895, 9),  // wardrobe -> Furniture
    (899, 8),  // water bottle -> Bottle
    (900, 8),  // water jug -> Bottle
    (902, 8),  // whiskey jug -> Bottle
    (904, 5),  // wig -> Accessories
    (907, 5),  // Windsor tie -> Accessories
    (908, 8),  // wine bottle -> Bottle
    (925, 6),  // guacamole -> Snack
    (928, 6),  // trifle -> Snack
    (929, 6),  // ice cream -> Snack
    (930, 6),  // ice lolly -> Snack
    (931, 6),  // French loaf -> Snack
    (932, 6),  // bagel -> Snack
    (933, 6),  // pretzel -> Snack
    (934, 6),  // cheeseburger -> Snack
    (935, 6),  // hotdog -> Snack
    (936, 6),  // mashed potato -> Snack
    (937, 6),  // head cabbage -> Snack
    (938, 6),  // broccoli -> Snack
    (939, 6),  // cauliflower -> Snack
    (940, 6),  // zucchini -> Snack
    (941, 6),  // spaghetti squash -> Snack
    (942, 6),  // acorn squash -> Snack
    (943, 6),  // butternut squash -> Snack
    (944, 6),  // cucumber -> Snack
    (945, 6),  // artichoke -> Snack
    (946, 6),  // bell pepper -> Snack
    (947, 6),  // cardoon -> Snack
    (948, 6),  // mushroom -> Snack
    (949, 6),  // Granny Smith -> Snack
    (950, 6),  // strawberry -> Snack
    (951, 6),  // orange -> Snack
    (952, 6),  // lemon -> Snack
    (953, 6),  // fig -> Snack
    (954, 6),  // pineapple -> Snack
    (955, 6),  // banana -> Snack
    (956, 6),  // jackfruit -> Snack
    (957, 6),  // custard apple -> Snack
    (958, 6),  // pomegranate -> Snack
    (961, 6),  // chocolate sauce -> Snack
    (962, 6),  // dough -> Snack
    (963, 6),  // meat loaf -> Snack
    (964, 6),  // pizza -> Snack
    (965, 6),  // potpie -> Snack
    (966, 6),  // burrito -> Snack
    (988, 6),  // corn -> Snack
];

/// The product category the class scores point to, if they are clear enough.
pub(super) fn category_of(scores: &[f32]) -> Option<u32> {
    // 1001 outputs include the background class 0; 1000 outputs start at class 1.
    let offset = match scores.len() {
        1001 => 0,
        1000 => 1,
        _ => return None,
    };
    let mut mass: Vec<(u32, f32)> = Vec::new();
    for (class, category) in CLASSES {
        let Some(p) = scores.get(usize::from(*class) - offset) else {
            continue;
        };
        match mass.iter_mut().find(|(c, _)| c == category) {
            Some(m) => m.1 += p.max(0.0),
            None => mass.push((*category, p.max(0.0))),
        }
    }
    mass.into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, m)| *m >= MIN_MASS)
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot(len: usize, class: usize, p: f32) -> Vec<f32> {
        let mut v = vec![0.0; len];
        v[class] = p;
        v
    }

    #[test]
    fn clear_classes_give_their_category() {
        // 771 running shoe -> Shoes (4); 955 banana -> Snack (6).
        assert_eq!(category_of(&one_hot(1001, 771, 0.9)), Some(4));
        assert_eq!(category_of(&one_hot(1001, 955, 0.5)), Some(6));
        // A 1000-class output is numbered from class 1.
        assert_eq!(category_of(&one_hot(1000, 770, 0.9)), Some(4));
    }

    #[test]
    fn weak_or_unmapped_classes_give_none() {
        assert_eq!(category_of(&one_hot(1001, 771, 0.1)), None);
        // 1 goldfish is no product.
        assert_eq!(category_of(&one_hot(1001, 1, 1.0)), None);
        assert_eq!(category_of(&[0.5; 10]), None);
    }

    #[test]
    fn table_is_sorted_and_in_range() {
        assert!(CLASSES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(CLASSES.iter().all(|(c, _)| (1..=1000).contains(c)));
    }
}
