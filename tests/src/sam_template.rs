//! template.yaml as the runtime tests read it: each function's environment as the template
//! gives it (Globals merged with the function's own variables, `!Ref`/`!If` resolved against
//! parameter values and the resources a test created), and each resource's definition (a
//! table's key schema), so that tests build what the template describes instead of repeating it.

use serde_yaml_ng::Value;
use serde_yaml_ng::value::TaggedValue;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// template.yaml at the repository root.
pub fn template_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .join("template.yaml")
}

pub struct SamTemplate {
    root: Value,
}

impl SamTemplate {
    pub fn load() -> Self {
        let path = template_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let root = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
        Self { root }
    }

    /// `Resources.<id>`.
    pub fn resource(&self, id: &str) -> &Value {
        self.root
            .get("Resources")
            .and_then(|r| r.get(id))
            .unwrap_or_else(|| panic!("template.yaml has no resource {id}"))
    }

    /// `Resources.<id>.Type`.
    pub fn resource_type(&self, id: &str) -> &str {
        self.resource(id)
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("resource {id} has no Type"))
    }

    /// `Resources.<id>.Type`, or `None` when `id` is not a resource (a parameter, say).
    pub fn try_resource_type(&self, id: &str) -> Option<&str> {
        self.root.get("Resources")?.get(id)?.get("Type")?.as_str()
    }

    /// A parameter's `Default`, as text (`""` when it has none).
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        let parameter = self.root.get("Parameters")?.get(name)?;
        Some(parameter.get("Default").map(scalar).unwrap_or_default())
    }

    /// A table's key schema: (attribute name, `HASH`|`RANGE`, attribute type `S`|`N`|`B`).
    /// The table's global secondary indexes: name, keys (as [`Self::table_keys`]) and the
    /// non-key attributes projected (empty: all).
    pub fn table_indexes(&self, id: &str) -> Vec<TableIndex> {
        let props = &self.resource(id)["Properties"];
        let types: BTreeMap<String, String> = props
            .get("AttributeDefinitions")
            .and_then(Value::as_sequence)
            .map(|defs| {
                defs.iter()
                    .map(|d| (scalar(&d["AttributeName"]), scalar(&d["AttributeType"])))
                    .collect()
            })
            .unwrap_or_default();
        props
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
            .map(|indexes| {
                indexes
                    .iter()
                    .map(|index| TableIndex {
                        name: scalar(&index["IndexName"]),
                        keys: index["KeySchema"]
                            .as_sequence()
                            .map(|keys| {
                                keys.iter()
                                    .map(|k| {
                                        let name = scalar(&k["AttributeName"]);
                                        let kind = types.get(&name).cloned().unwrap_or_default();
                                        (name, scalar(&k["KeyType"]), kind)
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                        projected: index["Projection"]
                            .get("NonKeyAttributes")
                            .and_then(Value::as_sequence)
                            .map(|a| a.iter().map(scalar).collect())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn table_keys(&self, id: &str) -> Vec<(String, String, String)> {
        let props = self
            .resource(id)
            .get("Properties")
            .unwrap_or_else(|| panic!("table {id} has no Properties"));
        let types: BTreeMap<String, String> = props
            .get("AttributeDefinitions")
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("table {id} has no AttributeDefinitions"))
            .iter()
            .map(|d| (scalar(&d["AttributeName"]), scalar(&d["AttributeType"])))
            .collect();
        props
            .get("KeySchema")
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("table {id} has no KeySchema"))
            .iter()
            .map(|k| {
                let name = scalar(&k["AttributeName"]);
                let kind = types
                    .get(&name)
                    .unwrap_or_else(|| panic!("table {id}: key {name} has no attribute type"))
                    .clone();
                (name, scalar(&k["KeyType"]), kind)
            })
            .collect()
    }

    /// The function's environment variables as template expressions (Globals, then its own).
    pub fn environment(&self, function_id: &str) -> BTreeMap<String, Value> {
        let mut variables = BTreeMap::new();
        let globals = self
            .root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Environment"))
            .and_then(|e| e.get("Variables"));
        let own = self
            .resource(function_id)
            .get("Properties")
            .and_then(|p| p.get("Environment"))
            .and_then(|e| e.get("Variables"));
        for map in [globals, own].into_iter().flatten() {
            for (k, v) in map.as_mapping().expect("Variables is a mapping") {
                variables.insert(scalar(k), v.clone());
            }
        }
        variables
    }

    /// Evaluates `!Ref`, `!If`, `!Equals`, `!Not`, `!And`, `!Or` and `!Condition` against
    /// parameter values and the physical ids a test gave to resources.
    pub fn resolve(&self, value: &Value, env: &Resolution<'_>) -> String {
        match value {
            Value::Tagged(tagged) => self.resolve_tagged(tagged, env),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one entry");
                let tag = scalar(k);
                let tag = tag.strip_prefix("Fn::").unwrap_or(&tag);
                self.resolve_tagged(
                    &TaggedValue {
                        tag: serde_yaml_ng::value::Tag::new(tag),
                        value: v.clone(),
                    },
                    env,
                )
            }
            other => scalar(other),
        }
    }

    fn resolve_tagged(&self, tagged: &TaggedValue, env: &Resolution<'_>) -> String {
        let tag = tagged.tag.to_string();
        let tag = tag.trim_start_matches('!');
        let args = || tagged.value.as_sequence().cloned().unwrap_or_default();
        match tag {
            "Ref" => {
                let name = scalar(&tagged.value);
                env.reference(self, &name)
            }
            "If" => {
                let a = args();
                let branch = if self.condition(&scalar(&a[0]), env) {
                    &a[1]
                } else {
                    &a[2]
                };
                self.resolve(branch, env)
            }
            other => panic!("template expression !{other} is not supported by the runtime tests"),
        }
    }

    /// A named condition of `Conditions`.
    pub fn condition(&self, name: &str, env: &Resolution<'_>) -> bool {
        let expression = self
            .root
            .get("Conditions")
            .and_then(|c| c.get(name))
            .unwrap_or_else(|| panic!("template.yaml has no condition {name}"))
            .clone();
        self.truth(&expression, env)
    }

    fn truth(&self, value: &Value, env: &Resolution<'_>) -> bool {
        let (tag, inner) = match value {
            Value::Tagged(t) => (t.tag.to_string(), t.value.clone()),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one entry");
                (scalar(k), v.clone())
            }
            other => panic!("not a condition: {other:?}"),
        };
        let tag = tag.trim_start_matches('!').trim_start_matches("Fn::");
        let items = inner.as_sequence().cloned().unwrap_or_default();
        match tag {
            "Equals" => self.resolve(&items[0], env) == self.resolve(&items[1], env),
            "Not" => !self.truth(&items[0], env),
            "And" => items.iter().all(|i| self.truth(i, env)),
            "Or" => items.iter().any(|i| self.truth(i, env)),
            "Condition" => self.condition(&scalar(&inner), env),
            other => panic!("condition !{other} is not supported by the runtime tests"),
        }
    }
}

/// What `!Ref` means in one test: parameter values (template defaults unless overridden) and
/// the physical ids of the resources the test created.
pub struct Resolution<'a> {
    pub parameters: &'a BTreeMap<String, String>,
    pub resources: &'a BTreeMap<String, String>,
}

impl Resolution<'_> {
    fn reference(&self, template: &SamTemplate, name: &str) -> String {
        if let Some(v) = self.parameters.get(name) {
            return v.clone();
        }
        if let Some(v) = template.parameter_default(name) {
            return v;
        }
        if let Some(v) = self.resources.get(name) {
            return v.clone();
        }
        if name.starts_with("AWS::") {
            return match name {
                "AWS::Region" => "us-east-1".into(),
                "AWS::StackName" => "twilio-events-test".into(),
                _ => String::new(),
            };
        }
        panic!("!Ref {name}: not a parameter, and the test created no such resource")
    }
}

/// A YAML scalar as text.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// A global secondary index of a table in the template.
#[derive(Clone, Debug)]
pub struct TableIndex {
    pub name: String,
    /// (attribute, key type, attribute type).
    pub keys: Vec<(String, String, String)>,
    /// Non-key attributes projected (INCLUDE); empty for ALL.
    pub projected: Vec<String>,
}
