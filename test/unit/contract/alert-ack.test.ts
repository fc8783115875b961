import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { encodeAlertAck, parseAlertAck } from '../../../shared/contract/alert-ack.js';
import { ContractError } from '../../../shared/contract/errors.js';
import { parseTopic, topics } from '../../../shared/contract/topics.js';

describe('alert acknowledgements', () => {
  it('round-trips and has a topic of its own', () => {
    const ack = { id: 'truck-3.engine-overheat.1764000010000', at: 1764000021000 };
    assert.deepEqual(parseAlertAck('truck-3', encodeAlertAck(ack)), ack);
    assert.equal(topics.alertAcks('truck-3'), 'fleet/v1/truck-3/alert-acks');
    assert.deepEqual(parseTopic(topics.alertAcks('truck-3')), { vehicle: 'truck-3', kind: 'alert-acks' });
  });

  it('refuses what is not an acknowledgement of this vehicle, naming the field', () => {
    const cases: [string, RegExp][] = [
      ['not json', /not valid JSON/],
      ['[]', /must be a JSON object/],
      ['{"at": 1}', /^ack\.id: /],
      ['{"id": "truck-4.engine-overheat.1", "at": 1}', /^ack\.id: must be an alert id of truck-3/],
      ['{"id": "truck-3.engine-overheat.x", "at": 1}', /^ack\.id: /],
      ['{"id": "truck-3.engine overheat.1", "at": 1}', /^ack\.id: /],
      [`{"id": "truck-3.${'r'.repeat(300)}.1", "at": 1}`, /^ack\.id: /],
      ['{"id": "truck-3.engine-overheat.1"}', /^ack\.at: /],
      ['{"id": "truck-3.engine-overheat.1", "at": -5}', /^ack\.at: /],
    ];
    for (const [payload, message] of cases) {
      assert.throws(
        () => parseAlertAck('truck-3', Buffer.from(payload)),
        (err: Error) => err instanceof ContractError && message.test(err.message),
        payload,
      );
    }
  });
});
