//! Community objects: the aliases BGPAdvertisements may name instead of a value.

use std::collections::HashMap;

use super::{COMMUNITY, Cx, obj_name};
use crate::community::Community;
use crate::v1beta1;

/// One valid alias, where it was defined and how its value was written.
pub(super) struct Alias {
    /// The Community object that defines it.
    pub object: String,
    /// Its index in that object's `spec.communities`.
    pub index: usize,
    /// The value as written, for messages (`large:1:2:3`; [`Community`]'s display is FRR's).
    pub text: String,
    pub value: Community,
}

/// Every valid alias, in the order given, and the value of each alias name.
#[derive(Default)]
pub(super) struct Aliases {
    pub list: Vec<Alias>,
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
                    out.list.push(Alias {
                        object: name.clone(),
                        index: i,
                        text,
                        value,
                    });
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
