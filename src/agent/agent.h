/*
 * agent.h - `berth agent`: one cluster node. It is the host's engine (it
 * serves the Docker Engine API on EXEC_ROOT/berth.sock, so `docker ps` on a
 * node lists its task containers) and the cluster agent: it joins the server
 * (the join token pins the cluster CA; a CSR buys a node certificate; mutual
 * TLS from then on), registers its resources and attributes, heartbeats,
 * long-polls its desired tasks, runs them through the runner (runner.h) and
 * reports their transitions in batches. Protocol: docs/cluster.md.
 */
#ifndef BERTH_AGENT_AGENT_H
#define BERTH_AGENT_AGENT_H

int agent_main(int argc, char **argv);

#endif
