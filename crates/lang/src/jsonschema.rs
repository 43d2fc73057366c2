//! JSON Schema for YAML plans, generated from [`schema`](super::schema).
//!
//! The checked-in `grammar/plan.schema.json` is this output; a test fails when they
//! drift. Editors use it through `# yaml-language-server: $schema=...`.

use serde_json::{Map, Value, json};

use super::schema::{self, ChildKind, NodeSpec, StepSet, Ty};

fn ty(t: Ty) -> Value {
    match t {
        Ty::Str => json!({"type": "string"}),
        Ty::Int => json!({"type": "integer"}),
        Ty::Num => json!({"type": "number"}),
        Ty::Bool => json!({"type": "boolean"}),
        Ty::Duration => {
            json!({"type": ["string", "number"], "description": "a duration such as 500ms, 2s, 1m30s (a number means seconds)"})
        }
        Ty::Size => {
            json!({"type": ["string", "integer"], "description": "a size such as 16MiB, 512KiB, 1MB (an integer means bytes)"})
        }
        Ty::Any => json!({"type": ["string", "number", "boolean", "null"]}),
    }
}

fn steps_ref(set: StepSet) -> Value {
    match set {
        StepSet::Main => json!({"$ref": "#/$defs/steps"}),
        StepSet::Ws => json!({"$ref": "#/$defs/ws-steps"}),
    }
}

fn body(spec: &NodeSpec) -> Value {
    if spec.is_map && matches!(spec.name, "form" | "query") {
        // A key may repeat: YAML writes its values as a list.
        let scalar = json!({"type": ["string", "number", "boolean", "null"]});
        return json!({
            "type": "object",
            "description": spec.doc,
            "additionalProperties": {"anyOf": [scalar, {"type": "array", "items": scalar}]}
        });
    }
    if spec.is_map {
        return json!({
            "type": "object",
            "description": spec.doc,
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]}
        });
    }
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in spec.args.iter().chain(spec.props) {
        let mut t = ty(f.ty);
        if spec.name == "check" && f.name == "status" {
            // YAML also takes a list: `status: [200, 201, 3xx]`.
            t = json!({"anyOf": [
                {"type": ["integer", "string"]},
                {"type": "array", "items": {"type": ["integer", "string"]}}
            ]});
        }
        if let Some(o) = t.as_object_mut() {
            o.insert("description".into(), Value::String(f.doc.to_string()));
        }
        props.insert(f.name.to_string(), t);
        if f.required {
            required.push(Value::String(f.name.to_string()));
        }
    }
    for c in spec.children {
        let key = NodeSpec::yaml_key(c).to_string();
        let v = match c.kind {
            ChildKind::One | ChildKind::Map => json!({"$ref": format!("#/$defs/{}", c.node)}),
            ChildKind::Many(_) => {
                json!({"type": "array", "items": {"$ref": format!("#/$defs/{}", c.node)}})
            }
            ChildKind::Steps(set) => steps_ref(set),
        };
        props.insert(key, v);
    }
    let object = json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    });
    let mut alts = vec![object];
    match spec.args {
        [] => {}
        [one] => alts.push(ty(one.ty)),
        _ => alts.push(json!({"type": "string", "description": "shorthand: the arguments separated by spaces"})),
    }
    if spec.args.is_empty() {
        if let Some(set) = spec.steps() {
            alts.push(steps_ref(set));
        }
    }
    if spec.args.iter().all(|a| !a.required) && spec.props.iter().all(|p| !p.required) {
        alts.push(json!({"type": "null"}));
    }
    if alts.len() == 1 {
        let mut o = alts.remove(0);
        if let Some(m) = o.as_object_mut() {
            m.insert("description".into(), Value::String(spec.doc.to_string()));
        }
        o
    } else {
        json!({"description": spec.doc, "anyOf": alts})
    }
}

fn step_list(set: StepSet) -> Value {
    let items: Vec<Value> = set
        .kinds()
        .iter()
        .map(|k| {
            json!({
                "type": "object",
                "properties": {(*k): {"$ref": format!("#/$defs/{k}")}},
                "required": [k],
                "additionalProperties": false
            })
        })
        .collect();
    let mut any = items;
    any.push(json!({"type": "string", "enum": ["close"]}));
    json!({"type": "array", "items": {"anyOf": any}})
}

/// The JSON Schema of a YAML plan.
pub fn plan_schema() -> Value {
    let mut defs = Map::new();
    for spec in schema::SPECS.iter().filter(|s| s.name != "document") {
        defs.insert(spec.name.to_string(), body(spec));
    }
    defs.insert("steps".into(), step_list(StepSet::Main));
    defs.insert("ws-steps".into(), step_list(StepSet::Ws));
    let mut root = body(&schema::DOCUMENT);
    if let Some(o) = root.as_object_mut() {
        o.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        o.insert("title".into(), json!("loadplan plan (YAML)"));
        o.insert("$defs".into(), Value::Object(defs));
    }
    root
}
