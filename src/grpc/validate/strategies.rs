//! Generated field values for the property tests in `props.rs`. Each value carries its class
//! by construction (unset, valid, blank or broken), so the tests know which fields a request
//! breaks without asking the code under test. Values mix valid ones, every length up to each
//! limit and past it, unicode, whitespace of every kind, control characters, NUL and 400 KB
//! strings.

use proptest::prelude::*;
use proptest::sample::Index;

/// How a generated value relates to its field's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// The empty string: the field is not set.
    Unset,
    Valid,
    /// Set, but only whitespace.
    Blank,
    /// Set, and breaks a rule other than blankness.
    Broken,
}

#[derive(Debug, Clone)]
pub(super) struct Field {
    pub(super) text: String,
    pub(super) class: Class,
}

impl Field {
    pub(super) fn broken(&self) -> bool {
        matches!(self.class, Class::Blank | Class::Broken)
    }

    pub(super) fn unset(&self) -> bool {
        self.class == Class::Unset
    }
}

/// Every control character (Unicode Cc: C0, DEL and C1), NUL, CR and LF among them.
const CONTROL: &str = r"[\x00-\x1f\x7f-\x{9f}]";
/// The control characters an SMS text may not hold: all but LF and CR.
const CONTROL_BUT_LINE_BREAKS: &str = r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x{9f}]";
/// Whitespace of several kinds, none of it enough to make a value.
const BLANK: &str = r"[ \t\n\r\x{a0}\x{2003}\x{2028}\x{3000}]{1,6}";
/// Four bytes in UTF-8, one character: the widest value a length limit allows.
const WIDE: &str = "\u{1d11e}";

/// Strings matching `pattern`, compiled once: a `&str` used as a strategy compiles its pattern
/// again for every value, which took most of the run time with Unicode classes.
#[allow(clippy::unwrap_used)] // a bad pattern is a bug in this file, and fails every test at once
fn regex(pattern: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(pattern).unwrap().boxed()
}

/// Any of `options`, equally likely (`prop_oneof!` takes at most ten).
fn one_of(options: Vec<BoxedStrategy<String>>) -> BoxedStrategy<String> {
    proptest::strategy::Union::new(options).boxed()
}

/// Exactly `text`.
fn just(text: &str) -> BoxedStrategy<String> {
    Just(text.to_owned()).boxed()
}

/// A field: unset, valid, blank, broken by `broken`, a valid value with a control character
/// from `controls` inserted, or a huge value. `unset_weight` is low for required fields, so that
/// enough requests come out fully valid.
fn field(
    valid: BoxedStrategy<String>,
    broken: BoxedStrategy<String>,
    controls: &'static str,
    unset_weight: u32,
) -> BoxedStrategy<Field> {
    let class = |class| move |text| Field { text, class };
    prop_oneof![
        unset_weight => Just(Field { text: String::new(), class: Class::Unset }),
        24 => valid.clone().prop_map(class(Class::Valid)),
        2 => broken.prop_map(class(Class::Broken)),
        1 => regex(BLANK).prop_map(class(Class::Blank)),
        2 => with_control(valid, controls),
        1 => huge(),
    ]
    .boxed()
}

/// A valid value with one control character inserted at any position.
fn with_control(valid: BoxedStrategy<String>, controls: &'static str) -> BoxedStrategy<Field> {
    (valid, regex(controls), any::<Index>())
        .prop_map(|(mut text, control, at)| {
            let bounds: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            text.insert_str(bounds[at.index(bounds.len())], &control);
            Field {
                text,
                class: Class::Broken,
            }
        })
        .boxed()
}

/// Far over every limit (up to 400 KB), and never blank, so a huge `prove_id` still counts as
/// given.
fn huge() -> BoxedStrategy<Field> {
    (
        prop_oneof![Just("9"), Just("x"), Just(WIDE), Just("\0")],
        1_000usize..100_000,
    )
        .prop_map(|(unit, n)| Field {
            text: unit.repeat(n),
            class: Class::Broken,
        })
        .boxed()
}

/// Non-blank free text of up to 128 characters without control characters: a letter or digit
/// first, then anything outside Unicode's "other" categories (so spaces of every kind, too).
const FREE_TEXT: &str = r"[\p{L}\p{N}]\PC{0,127}";
/// The same, up to 160 characters.
const FREE_SMS_TEXT: &str = r"[\p{L}\p{N}]\PC{0,159}";

/// `unit` repeated a number of times in `times`: cheap values of every length up to a limit and
/// past it.
fn repeat(unit: &'static str, times: std::ops::RangeInclusive<usize>) -> BoxedStrategy<String> {
    times.prop_map(move |n| unit.repeat(n)).boxed()
}

pub(super) fn id() -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        regex(r"[A-Za-z0-9_.:-]{1,40}"),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        regex(FREE_TEXT),
        repeat("k", 1..=128),
        repeat(WIDE, 1..=128),
    ]
    .boxed();
    let broken = prop_oneof![repeat("k", 129..=300), repeat(WIDE, 129..=300)].boxed();
    field(valid, broken, CONTROL, 8)
}

pub(super) fn name() -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        regex(r"[A-Z][a-z]{0,30}"),
        regex(r"[A-Z][a-z]{1,10}[ '-][A-Z][a-z]{1,10}"),
        regex(FREE_TEXT),
        repeat("\u{e9}", 1..=128),
    ]
    .boxed();
    let broken = repeat("\u{e9}", 129..=300);
    field(valid, broken, CONTROL, 1)
}

pub(super) fn phone(unset_weight: u32) -> BoxedStrategy<Field> {
    let valid = one_of(vec![
        regex(r"[2-9][0-9]{9}"),
        regex(r"\+[1-9][0-9]{6,14}"),
        regex(r"[0-9]{7,15}"),
        just("2001004014"),
    ]);
    let broken = one_of(vec![
        regex(r"\+?[0-9]{0,6}"),
        regex(r"\+?[0-9]{16,40}"),
        regex(r"[0-9]{3}[-. ()][0-9]{3}[-. ][0-9]{4}"),
        regex(r"[0-9]{4}[A-Za-z][0-9]{5}"),
        regex(r"[\x{660}-\x{669}]{10}"),
        regex(r"[\x{ff10}-\x{ff19}]{10}"),
        regex(r"\+\+[0-9]{10}"),
        regex(r"[0-9]{10}\+"),
    ]);
    // `\+?[0-9]{0,6}` may come out empty, which is unset, not broken.
    let broken = broken
        .prop_map(|p| if p.is_empty() { "+".into() } else { p })
        .boxed();
    field(valid, broken, CONTROL, unset_weight)
}

pub(super) fn email() -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        regex(r"[a-z0-9._+-]{1,40}@[a-z0-9-]{1,40}(\.[a-z]{2,8}){0,2}"),
        regex(r"[!#$%&'*/=?^_`{|}~-]{1,10}@[a-z]{1,10}"),
        regex(r"[\p{L}\p{N}]{1,20}@[\p{L}\p{N}]{1,20}\.[a-z]{2,6}"),
        Just("first-last@my-company.com".to_owned()),
        Just(format!("{}@{}", "a".repeat(64), "b".repeat(189))),
        Just(format!("{}@{}", WIDE.repeat(200), WIDE.repeat(53))),
    ]
    .boxed();
    let broken = one_of(vec![
        regex(r"[a-z0-9.]{1,40}"),
        regex(r"[a-z]{1,10}@[a-z]{1,10}@[a-z]{1,10}"),
        regex(r"@[a-z.]{1,20}"),
        regex(r"[a-z.]{1,20}@"),
        just("@"),
        regex(r"[a-z]{1,10}[ \t\x{a0}\x{2028}\x{3000}][a-z]{0,10}@[a-z]{1,10}"),
        regex(r"[a-z]{1,10}@[a-z]{1,10}\.com\r\n(Bcc|Cc): [a-z]{1,10}@[a-z]{1,10}\.com"),
    ]);
    let over_limit =
        repeat("b", 190..=300).prop_map(|domain| format!("{}@{domain}", "a".repeat(64)));
    let broken = prop_oneof![broken, over_limit].boxed();
    field(valid, broken, CONTROL, 8)
}

pub(super) fn final_target_url(unset_weight: u32) -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        regex(r"https://[a-z]{1,20}\.com(/[A-Za-z0-9._+=:?-]{0,80})?"),
        Just(format!("https://example.com/{}", "a".repeat(108))),
    ]
    .boxed();
    let broken = prop_oneof![
        regex(r#"https://[a-z]{1,10}\.com/[a-z]{0,10}[ &#%<>"'\\]"#),
        regex(r"https://[\x{e0}-\x{ff}]{1,10}\.com"),
        Just(format!("https://example.com/{}", "a".repeat(109))),
    ]
    .boxed();
    field(valid, broken, CONTROL, unset_weight)
}

pub(super) fn sms() -> BoxedStrategy<Field> {
    let valid = prop_oneof![
        regex(FREE_SMS_TEXT),
        regex(r"[A-Za-z ]{0,40}\n[A-Za-z ]{0,40}######"),
        regex(r"Tap ####\r\n[a-z ]{0,20}"),
        repeat("#", 1..=160),
        repeat(WIDE, 1..=160),
    ]
    .boxed();
    let broken = prop_oneof![repeat("a ", 81..=150), repeat(WIDE, 161..=300)].boxed();
    field(valid, broken, CONTROL_BUT_LINE_BREAKS, 8)
}

pub(super) fn ip() -> BoxedStrategy<Field> {
    let valid = one_of(vec![
        regex(r"[0-9]{1,3}(\.[0-9]{1,3}){3}"),
        regex(r"[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}"),
    ]);
    let valid = prop_oneof![valid, repeat("a1:", 1..=21), Just("f".repeat(64))].boxed();
    let broken = one_of(vec![
        regex(r"[a-zA-Z0-9.:]{65,70}"),
        regex(r"[0-9.]{1,10}[ %/\[\]-][0-9]{1,5}"),
        regex(r"[\x{660}-\x{669}]{1,5}"),
    ]);
    field(valid, broken, CONTROL, 8)
}

pub(super) fn correlation_id() -> BoxedStrategy<Field> {
    let uuid = || any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string());
    let broken = prop_oneof![
        uuid().prop_map(|id| format!("A{}", &id[1..])),
        uuid().prop_map(|id| id.replace('-', "")),
        uuid().prop_map(|id| format!("{{{id}}}")),
        uuid().prop_map(|id| format!("urn:uuid:{id}")),
        uuid().prop_map(|id| format!("{id}\n")),
        uuid().prop_map(|id| format!(" {id}")),
        uuid().prop_map(|id| id[..35].to_owned()),
        uuid().prop_map(|id| format!("{id}0")),
        uuid().prop_map(|id| format!("{}g", &id[..35])),
        regex(r"[0-9a-f]{1,30}"),
    ]
    .boxed();
    field(uuid().boxed(), broken, CONTROL, 1)
}

/// Any `possession_type` number: valid ones (1 to 3), UNSPECIFIED (0) and numbers no enum has.
pub(super) fn possession() -> BoxedStrategy<i32> {
    prop_oneof![
        12 => 1..=3i32,
        1 => Just(0),
        1 => 4..=i32::MAX,
        1 => i32::MIN..0,
    ]
    .boxed()
}

/// Valid, and as wide as `max` allows or nearly (four bytes a character), or unset: requests
/// made of these reach Prove's 4 KB limit, which mixed values almost never do.
pub(super) fn wide(max: usize) -> BoxedStrategy<Field> {
    prop_oneof![
        4 => repeat(WIDE, max - 8..=max).prop_map(|text| Field { text, class: Class::Valid }),
        1 => Just(Field { text: String::new(), class: Class::Unset }),
    ]
    .boxed()
}

/// A valid e-mail address of 246 to 254 characters, four bytes each but the `@`.
pub(super) fn wide_email() -> BoxedStrategy<Field> {
    (1usize..=120, 125usize..=133)
        .prop_map(|(local, domain)| Field {
            text: format!("{}@{}", WIDE.repeat(local), WIDE.repeat(domain)),
            class: Class::Valid,
        })
        .boxed()
}

/// A valid phone number of the greatest length, 15 digits after a `+`.
pub(super) fn long_phone() -> BoxedStrategy<Field> {
    regex(r"\+[1-9][0-9]{14}")
        .prop_map(|text| Field {
            text,
            class: Class::Valid,
        })
        .boxed()
}

/// A valid first or last name of 120 to 128 characters, four bytes each.
pub(super) fn wide_name() -> BoxedStrategy<Field> {
    repeat(WIDE, 120..=128)
        .prop_map(|text| Field {
            text,
            class: Class::Valid,
        })
        .boxed()
}

/// A valid `ip_address` of the greatest length, 64 characters.
pub(super) fn long_ip() -> BoxedStrategy<Field> {
    Just(Field {
        text: "f".repeat(64),
        class: Class::Valid,
    })
    .boxed()
}

/// A valid `final_target_url` of 120 to 128 characters.
pub(super) fn long_url() -> BoxedStrategy<Field> {
    repeat("a", 100..=108)
        .prop_map(|path| Field {
            text: format!("https://example.com/{path}"),
            class: Class::Valid,
        })
        .boxed()
}
