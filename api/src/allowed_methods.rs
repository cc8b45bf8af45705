//! The methods each path allows, read once from the spec, for the `Allow` header of a 405:
//! poem's router answers a wrong method without one.

use std::{collections::BTreeMap, sync::Arc};

/// Which methods each path of the spec allows, for the `Allow` header of a 405.
#[derive(Clone, Default)]
pub struct AllowedMethods(Arc<Vec<(Vec<String>, Vec<String>)>>);

impl AllowedMethods {
    pub fn from_spec(spec: &serde_yaml::Value) -> Self {
        let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(map) = spec.get("paths").and_then(serde_yaml::Value::as_mapping) {
            for (path, operations) in map {
                let Some(path) = path.as_str() else { continue };
                let methods = operations
                    .as_mapping()
                    .map(|ops| {
                        ops.keys()
                            .filter_map(serde_yaml::Value::as_str)
                            .map(str::to_uppercase)
                            .collect()
                    })
                    .unwrap_or_default();
                paths.insert(path.to_owned(), methods);
            }
        }
        let templates = paths
            .into_iter()
            .map(|(path, methods)| (segments(&path).map(str::to_owned).collect(), methods))
            .collect();
        Self(Arc::new(templates))
    }

    /// The methods of the most specific template matching `path` (literal segments win
    /// over parameters, as in routing).
    pub fn for_path(&self, path: &str) -> Vec<String> {
        let wanted: Vec<&str> = segments(path).collect();
        self.0
            .iter()
            .filter(|(template, _)| {
                template.len() == wanted.len()
                    && template
                        .iter()
                        .zip(&wanted)
                        .all(|(t, w)| t == w || t.starts_with('{'))
            })
            .min_by_key(|(template, _)| template.iter().filter(|t| t.starts_with('{')).count())
            .map(|(_, methods)| methods.clone())
            .unwrap_or_default()
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}
