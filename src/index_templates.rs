//! Indexes created on first use: a `_bulk` item for an index that does not exist makes it
//! from the matching index template (node config `index_templates`), as Elasticsearch
//! does with its index templates, so shippers pointed at `logs-<app>` need nobody to create
//! each index first.

use std::collections::HashSet;
use std::sync::Mutex;

use quarry_common::metastore::MetastoreError;
use quarry_common::pattern::wildcard_match;
use quarry_config::IndexTemplate;
use tracing::info;

use crate::index_service::{IndexService, IndexServiceError};

pub(crate) struct IndexTemplates {
    templates: Vec<IndexTemplate>,
    enabled: bool,
    /// Indexes seen to exist, so that a `_bulk` request to them costs no metastore call
    /// here. Forgotten when ingest says the index is gone (deleted since).
    known: Mutex<HashSet<String>>,
}

impl IndexTemplates {
    pub(crate) fn new(templates: Vec<IndexTemplate>, enabled: bool) -> IndexTemplates {
        IndexTemplates {
            templates,
            enabled,
            known: Mutex::default(),
        }
    }

    /// The template `index_id` would be made from: the highest priority among those
    /// matching it, the first listed among equals.
    pub(crate) fn template_for(&self, index_id: &str) -> Option<&IndexTemplate> {
        let mut best: Option<&IndexTemplate> = None;
        for template in &self.templates {
            let matches = template
                .index_id_patterns
                .iter()
                .any(|pattern| wildcard_match(pattern, index_id));
            if matches && best.is_none_or(|best| template.priority > best.priority) {
                best = Some(template);
            }
        }
        best
    }

    /// Creates `index_id` from its template if it has one and does not exist yet. Returns
    /// whether this call created it; another node (or request) creating it first is no
    /// error.
    pub(crate) async fn ensure_index(
        &self,
        index_service: &IndexService,
        index_id: &str,
    ) -> Result<bool, IndexServiceError> {
        if !self.enabled || self.lock().contains(index_id) {
            return Ok(false);
        }
        let Some(template) = self.template_for(index_id) else {
            return Ok(false);
        };
        self.ensure_index_from(index_service, index_id, template)
            .await
    }

    /// Creates `index_id` from `template` if it does not exist yet (and creating indexes
    /// on first use is on).
    pub(crate) async fn ensure_index_from(
        &self,
        index_service: &IndexService,
        index_id: &str,
        template: &IndexTemplate,
    ) -> Result<bool, IndexServiceError> {
        if !self.enabled || self.lock().contains(index_id) {
            return Ok(false);
        }
        let metastore = index_service.metastore();
        match metastore.index_metadata(index_id).await {
            Ok(_) => {
                self.lock().insert(index_id.to_string());
                return Ok(false);
            }
            Err(MetastoreError::IndexNotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
        let config = template
            .index_config(index_id)
            .map_err(IndexServiceError::Config)?;
        let created = match index_service.create_index_from_config(config).await {
            Ok(_) => true,
            Err(IndexServiceError::Metastore(MetastoreError::IndexAlreadyExists(_))) => false,
            Err(error) => return Err(error),
        };
        if created {
            info!(
                index_id,
                template_id = template.template_id,
                "index created on first use from its template"
            );
        }
        self.lock().insert(index_id.to_string());
        Ok(created)
    }

    /// The template for `index_id` from the node config, or else `builtin`: an ingest
    /// protocol's own mapping (Loki's, OpenTelemetry's).
    pub(crate) fn template_or<'a>(
        &'a self,
        index_id: &str,
        builtin: &'a Option<IndexTemplate>,
    ) -> Option<&'a IndexTemplate> {
        self.template_for(index_id).or(builtin.as_ref())
    }

    /// Ingest found `index_id` gone: the next request may create it again.
    pub(crate) fn forget(&self, index_id: &str) {
        self.lock().remove(index_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A built-in template from its YAML. The tests below hold every built-in to parse and
/// validate, so `None` never happens in a build that passed them.
pub(crate) fn builtin(yaml: &str) -> Option<IndexTemplate> {
    serde_yaml_ng::from_str(yaml).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_mappings_are_valid_templates() {
        for yaml in [
            crate::loki_push::DEFAULT_TEMPLATE,
            crate::otlp_logs::DEFAULT_TEMPLATE,
        ] {
            let template: IndexTemplate = serde_yaml_ng::from_str(yaml).unwrap();
            template.validate().unwrap();
        }
    }

    fn template(id: &str, patterns: &[&str], priority: u32) -> IndexTemplate {
        let yaml = format!(
            "template_id: {id}\nindex_id_patterns: [{}]\npriority: {priority}\n",
            patterns.join(", ")
        );
        serde_yaml_ng::from_str(&yaml).unwrap()
    }

    #[test]
    fn the_highest_priority_matching_template_wins() {
        let templates = IndexTemplates::new(
            vec![
                template("all-logs", &["logs-*"], 0),
                template("nginx", &["logs-nginx*"], 5),
                template("also-nginx", &["logs-nginx-*"], 5),
            ],
            true,
        );
        let id = |index_id: &str| {
            templates
                .template_for(index_id)
                .map(|t| t.template_id.as_str())
        };
        assert_eq!(id("logs-app"), Some("all-logs"));
        assert_eq!(id("logs-nginx-1"), Some("nginx"));
        assert_eq!(id("metrics-app"), None);
    }
}
