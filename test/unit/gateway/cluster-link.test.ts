import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { crossesCluster } from '../../../gateway/cluster/cluster-link.js';
import { topics } from '../../../shared/contract/topics.js';

describe('what crosses the gateway cluster', () => {
  it('carries what another gateway must hear: statuses, alerts, acknowledgements, and aedes announcing a client', () => {
    for (const topic of [topics.status('t-1'), topics.alerts('t-1'), topics.alertAcks('t-1'), '$SYS/gw-b/new/clients']) {
      assert.equal(crossesCluster(topic), true, topic);
    }
  });

  it('keeps telemetry and rejection notices on the gateway the vehicle is connected to', () => {
    for (const topic of [topics.telemetry('t-1'), topics.rejected('t-1'), 'something/else']) {
      assert.equal(crossesCluster(topic), false, topic);
    }
  });
});
