// The cluster: nodes, their roles, live or dead, and the indexing plan.

import { describeError } from "../api.js";
import { element, clear, table } from "../dom.js";

function stateOf(node, ready) {
  if (ready) return element("span", { class: "badge ok" }, "ready");
  return element("span", { class: "badge warn" }, "live, not ready");
}

export class ClusterPage {
  constructor(root, api) {
    this.root = root;
    this.api = api;
  }

  destroy() {}

  async show() {
    clear(this.root);
    const status = element("p", { class: "muted", role: "status" }, "Loading…");
    this.root.append(element("h1", {}, "Cluster"), status);
    try {
      const cluster = await this.api.get("/api/v1/cluster");
      status.remove();
      const ready = new Set(cluster.ready_nodes.map((node) => `${node.node_id}/${node.generation}`));
      this.root.append(element("p", {}, "Cluster ", element("code", {}, cluster.cluster_id),
        ", seen from ", element("code", {}, cluster.self_node_id), "."));
      const nodeRow = (node, state) => [
        element("code", {}, node.node_id),
        String(node.generation),
        node.rest_address || "—",
        node.enabled_services.join(", "),
        state,
        String(node.indexing_capacity),
      ];
      const rows = [
        ...cluster.live_nodes.map((node) => nodeRow(node, stateOf(node, ready.has(`${node.node_id}/${node.generation}`)))),
        ...cluster.dead_nodes.map((node) => nodeRow(node, element("span", { class: "badge bad" }, "dead"))),
      ];
      this.root.append(element("h2", {}, "Nodes"),
        table("Nodes", ["Node", "Generation", "REST address", "Roles", "State", "Indexing capacity"], rows));
      this.root.append(element("h2", {}, "Indexing plan"));
      const plan = cluster.indexing_plan;
      if (!plan) {
        this.root.append(element("p", { class: "muted" }, cluster.control_plane
          ? `The control plane (${cluster.control_plane}) has published no plan: each indexer indexes what it writes, and no dead node left shards to place.`
          : "No live control plane: shards of dead indexers wait until one runs."));
      } else if (plan.assignments.length === 0) {
        this.root.append(element("p", { class: "muted" },
          `Plan version ${plan.version}, made by ${cluster.control_plane ?? "the control plane"}: every shard is indexed by the node that writes it; no orphan shard to place.`));
      } else {
        this.root.append(element("p", {}, `Plan version ${plan.version}: shards of dead writers and the indexers draining them.`),
          table("Indexing plan", ["Index log", "Shard", "Indexer"], plan.assignments.map(([shard, nodeId]) =>
            [element("code", {}, shard.index), element("code", {}, shard.shard_id), element("code", {}, nodeId)])));
      }
    } catch (error) {
      status.textContent = describeError(error);
      status.className = "error-box";
    }
  }
}
