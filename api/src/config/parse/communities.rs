//! Community objects: the aliases BGPAdvertisements may name instead of a value.

use std::collections::HashMap;

use super::{COMMUNITY, Cx, obj_name};
use crate::community::Community;
use crate::v1beta1;

/// The value of each valid alias name.
#[derive(Default)]
pub(super) struct Aliases {
    by_name: HashMap<String, Community>,
}

impl Aliases {
    pub fn get(&self, name: &str) -> Option<Community> {
        self.by_name.get(name).copied()
    }
}

pub(super) fn aliases(cx: &mut Cx, crs: &[v1beta1::Community]) -> Aliases {
    let mut out = Aliases::default();
    for cr in crs {
        let name = obj_name(cr);
        for (i, alias) in cr.spec.communities.iter().flatten().enumerate() {
            let alias_name = alias.name.clone().unwrap_or_default();
            let text = alias.value.clone().unwrap_or_default();
            if alias_name.is_empty() {
                cx.error(
                    COMMUNITY,
                    &name,
                    format!("spec.communities[{i}].name"),
                    "missing community alias name",
                );
                continue;
            }
            match Community::parse(&text) {
                Ok(value) => {
                    if out.by_name.insert(alias_name.clone(), value).is_some() {
                        cx.error(
                            COMMUNITY,
                            &name,
                            format!("spec.communities[{i}].name"),
                            format!("duplicate definition of community {alias_name:?}: alias names must be unique across all Community objects"),
                        );
                    }
                }
                Err(e) => cx.error(
                    COMMUNITY,
                    &name,
                    format!("spec.communities[{i}].value"),
                    format!("parsing community {alias_name:?}: {e}"),
                ),
            }
        }
    }
    out
}
