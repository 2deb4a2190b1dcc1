//! Protobuf scalars in the JSON forms Mesos tooling writes. Mesos's own parser (stout)
//! and the proto3 JSON mapping both take an integer as a number or as a string (proto3
//! writes every int64 and uint64 as a string, such as `"nanoseconds": "3000000000"`), a
//! double also as `"Infinity"`, a boolean also as `"true"`, an enum by its name, and
//! `null` for a field left unset. The functions here are `deserialize_with` helpers that
//! take all of these, so that a task is read the same whichever tool wrote it.

use serde::de::{self, Deserializer, Visitor};

/// A JSON scalar as it came.
enum Raw {
    Int(i128),
    Float(f64),
    Text(String),
    Bool(bool),
    Null,
}

impl Raw {
    fn describe(&self) -> String {
        match self {
            Raw::Int(n) => n.to_string(),
            Raw::Float(f) => f.to_string(),
            Raw::Text(s) => format!("{s:?}"),
            Raw::Bool(b) => b.to_string(),
            Raw::Null => "null".into(),
        }
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, a string or a boolean")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Text(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
    d.deserialize_any(RawVisitor)
}

/// An integer from a number (integral) or a string of one; `None` for null.
fn integer(raw: &Raw) -> Result<Option<i128>, String> {
    let from_float = |f: f64| {
        // Integral and within i128 (every i64 and u64 is): a cast cannot lose anything.
        (f.is_finite() && f.fract() == 0.0 && f.abs() < 1e38).then_some(f as i128)
    };
    let found = match raw {
        Raw::Null => return Ok(None),
        Raw::Int(n) => Some(*n),
        Raw::Float(f) => from_float(*f),
        Raw::Text(s) => s
            .trim()
            .parse::<i128>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().and_then(from_float)),
        Raw::Bool(_) => None,
    };
    found.map(Some).ok_or_else(|| {
        format!(
            "expected an integer (a number, or a string of one), got {}",
            raw.describe()
        )
    })
}

fn ranged<'de, D: Deserializer<'de>, T: TryFrom<i128> + Default>(
    d: D,
    what: &str,
) -> Result<T, D::Error> {
    let raw = raw(d)?;
    match integer(&raw).map_err(de::Error::custom)? {
        None => Ok(T::default()),
        Some(n) => T::try_from(n).map_err(|_| de::Error::custom(format!("{n} is not {what}"))),
    }
}

/// An `int64` (null: 0).
pub fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    ranged(d, "a 64-bit integer")
}

/// A `uint64` (null: 0).
pub fn uint64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    ranged(d, "a non-negative 64-bit integer")
}

/// A `uint32` (null: 0).
pub fn uint32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    ranged(d, "a non-negative 32-bit integer")
}

/// A `double` from a number or a string of one, `"Infinity"`, `"-Infinity"` or `"NaN"`
/// included (null: 0).
pub fn double<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let raw = raw(d)?;
    double_of(&raw).map_err(de::Error::custom)
}

fn double_of(raw: &Raw) -> Result<f64, String> {
    match raw {
        Raw::Null => Ok(0.0),
        Raw::Int(n) => Ok(*n as f64),
        Raw::Float(f) => Ok(*f),
        Raw::Text(s) => match s.trim() {
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            "NaN" => Some(f64::NAN),
            other => other.parse::<f64>().ok().filter(|f| f.is_finite()),
        }
        .ok_or_else(|| format!("expected a number, got {}", raw.describe())),
        Raw::Bool(_) => Err(format!("expected a number, got {}", raw.describe())),
    }
}

/// A `bool` from `true`/`false` or a string of one (null: false).
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(optional_boolean(d)?.unwrap_or(false))
}

/// An optional `bool`: null leaves it unset.
pub fn optional_boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let raw = raw(d)?;
    match &raw {
        Raw::Null => Ok(None),
        Raw::Bool(b) => Ok(Some(*b)),
        Raw::Text(s) if s.trim() == "true" => Ok(Some(true)),
        Raw::Text(s) if s.trim() == "false" => Ok(Some(false)),
        _ => Err(de::Error::custom(format!(
            "expected true or false, got {}",
            raw.describe()
        ))),
    }
}

/// An enum's name: a string as given (what berth does with an unknown name is the
/// planner's to say), or proto3's number of one of `names`; `None` for null.
fn enum_name(raw: &Raw, names: &[(i128, &str)]) -> Result<Option<String>, String> {
    match raw {
        Raw::Null => Ok(None),
        Raw::Text(s) => Ok(Some(s.clone())),
        Raw::Int(n) => names
            .iter()
            .find(|(number, _)| number == n)
            .map(|(_, name)| Some((*name).to_owned()))
            .ok_or_else(|| format!("{n} is not one of {}", listed(names))),
        other => Err(format!(
            "expected one of {}, got {}",
            listed(names),
            other.describe()
        )),
    }
}

fn listed(names: &[(i128, &str)]) -> String {
    names.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
}

macro_rules! proto_enum {
    ($(#[$doc:meta])* $name:ident, $($number:literal => $text:literal),+ $(,)?) => {
        $(#[$doc])*
        pub fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
            let raw = raw(d)?;
            enum_name(&raw, &[$(($number, $text)),+]).map_err(de::Error::custom)
        }
    };
}

proto_enum!(
    /// `ContainerInfo.Type`.
    container_type, 1 => "DOCKER", 2 => "MESOS"
);
proto_enum!(
    /// `Image.Type`.
    image_type, 1 => "APPC", 2 => "DOCKER"
);
proto_enum!(
    /// `ContainerInfo.DockerInfo.Network`.
    docker_network, 1 => "HOST", 2 => "BRIDGE", 3 => "NONE", 4 => "USER"
);
proto_enum!(
    /// `Volume.Mode`.
    volume_mode, 1 => "RW", 2 => "RO"
);
proto_enum!(
    /// `Value.Type`.
    value_type, 0 => "SCALAR", 1 => "RANGES", 2 => "SET", 3 => "TEXT"
);
proto_enum!(
    /// `Environment.Variable.Type`.
    variable_type, 0 => "UNKNOWN", 1 => "VALUE", 2 => "SECRET"
);
proto_enum!(
    /// `ExecutorInfo.Type`.
    executor_type, 0 => "UNKNOWN", 1 => "DEFAULT", 2 => "CUSTOM"
);

/// A `map<string, Value.Scalar>` (a task's `limits`), each amount as [`scalar_amount`]
/// reads it; null: empty.
pub fn scalar_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, f64>, D::Error> {
    let map: Option<std::collections::BTreeMap<String, serde_json::Value>> =
        serde::Deserialize::deserialize(d)?;
    map.unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            scalar_amount(&value)
                .map(|amount| (name.clone(), amount))
                .map_err(|e| de::Error::custom(format!("limit {name:?}: {e}")))
        })
        .collect()
}

/// A `Value.Scalar`'s amount as Mesos's documentation writes a task's `limits`: the
/// message (`{"value": 2}`) or the bare amount (`2`, `"Infinity"`).
pub fn scalar_amount(value: &serde_json::Value) -> Result<f64, String> {
    let raw = match value {
        serde_json::Value::Object(fields) => {
            return match (fields.get("value"), fields.len()) {
                (Some(inner), 1) if !inner.is_object() => scalar_amount(inner),
                _ => Err(format!(
                    "expected {{\"value\": <amount>}} or an amount, got {value}"
                )),
            }
        }
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Raw::Int(i.into()),
            (_, Some(u), _) => Raw::Int(u.into()),
            (_, _, Some(f)) => Raw::Float(f),
            _ => Raw::Null,
        },
        serde_json::Value::String(s) => Raw::Text(s.clone()),
        serde_json::Value::Bool(b) => Raw::Bool(*b),
        serde_json::Value::Null => Raw::Null,
        serde_json::Value::Array(_) => {
            return Err(format!("expected an amount, got {value}"));
        }
    };
    double_of(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct Fields {
        #[serde(deserialize_with = "int64")]
        i: i64,
        #[serde(deserialize_with = "uint64")]
        u: u64,
        #[serde(deserialize_with = "uint32")]
        p: u32,
        #[serde(deserialize_with = "double")]
        f: f64,
        #[serde(deserialize_with = "boolean")]
        b: bool,
        #[serde(deserialize_with = "container_type")]
        t: Option<String>,
    }

    fn fields(json: &str) -> Result<Fields, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_come_as_numbers_or_strings() {
        let cases: [(&str, Result<Fields, &str>); 12] = [
            (
                r#"{"i": 3000000000}"#,
                Ok(Fields {
                    i: 3_000_000_000,
                    ..Fields::default()
                }),
            ),
            (
                r#"{"i": "3000000000"}"#,
                Ok(Fields {
                    i: 3_000_000_000,
                    ..Fields::default()
                }),
            ),
            (
                r#"{"i": "-5"}"#,
                Ok(Fields {
                    i: -5,
                    ..Fields::default()
                }),
            ),
            (
                r#"{"i": 3e9}"#,
                Ok(Fields {
                    i: 3_000_000_000,
                    ..Fields::default()
                }),
            ),
            (r#"{"i": null}"#, Ok(Fields::default())),
            (
                r#"{"u": "18446744073709551615"}"#,
                Ok(Fields {
                    u: u64::MAX,
                    ..Fields::default()
                }),
            ),
            (
                r#"{"p": "31000"}"#,
                Ok(Fields {
                    p: 31000,
                    ..Fields::default()
                }),
            ),
            (r#"{"i": "1.5"}"#, Err("expected an integer")),
            (r#"{"i": "ten"}"#, Err("expected an integer")),
            (r#"{"i": true}"#, Err("expected an integer")),
            (
                r#"{"u": -1}"#,
                Err("-1 is not a non-negative 64-bit integer"),
            ),
            (
                r#"{"p": 4294967296}"#,
                Err("4294967296 is not a non-negative 32-bit integer"),
            ),
        ];
        for (json, want) in cases {
            match (fields(json), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{json}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{json}: {got}"),
                (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn doubles_booleans_and_enums() {
        assert_eq!(
            fields(r#"{"f": "Infinity"}"#).map(|f| f.f),
            Ok(f64::INFINITY)
        );
        assert_eq!(
            fields(r#"{"f": "-Infinity"}"#).map(|f| f.f),
            Ok(f64::NEG_INFINITY)
        );
        assert!(fields(r#"{"f": "NaN"}"#).is_ok_and(|f| f.f.is_nan()));
        assert_eq!(fields(r#"{"f": "0.25"}"#).map(|f| f.f), Ok(0.25));
        assert_eq!(fields(r#"{"f": 2}"#).map(|f| f.f), Ok(2.0));
        assert!(fields(r#"{"f": "lots"}"#).is_err());
        assert_eq!(fields(r#"{"b": "true"}"#).map(|f| f.b), Ok(true));
        assert_eq!(fields(r#"{"b": false}"#).map(|f| f.b), Ok(false));
        assert!(fields(r#"{"b": "yes"}"#).is_err());
        assert_eq!(
            fields(r#"{"t": "DOCKER"}"#).map(|f| f.t),
            Ok(Some("DOCKER".into()))
        );
        assert_eq!(fields(r#"{"t": 2}"#).map(|f| f.t), Ok(Some("MESOS".into())));
        assert_eq!(fields(r#"{"t": null}"#).map(|f| f.t), Ok(None));
        let unknown = fields(r#"{"t": 7}"#).expect_err("no such number");
        assert!(
            unknown.contains("7 is not one of DOCKER, MESOS"),
            "{unknown}"
        );
    }

    #[test]
    fn a_limit_is_the_message_or_the_bare_amount() {
        let amount = |json: &str| scalar_amount(&serde_json::from_str(json).expect("json"));
        assert_eq!(amount(r#"{"value": 2}"#), Ok(2.0));
        assert_eq!(amount(r#"{"value": "Infinity"}"#), Ok(f64::INFINITY));
        assert_eq!(amount("512.0"), Ok(512.0));
        assert_eq!(amount(r#""Infinity""#), Ok(f64::INFINITY));
        assert!(amount(r#"{"value": 1, "extra": 2}"#).is_err());
        assert!(amount(r#"{"value": {"value": 1}}"#).is_err());
        assert!(amount("[1]").is_err());
        assert!(amount(r#""much""#).is_err());
    }
}
