import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { mayPublish, maySubscribe, type Identity } from '../../../gateway/access.js';
import { parseTopic, topics } from '../../../shared/contract/topics.js';

const truck: Identity = { kind: 'vehicle', vehicle: 'truck-1' };
const dispatcher: Identity = { kind: 'service', role: 'dispatcher' };
const consoleService: Identity = { kind: 'service', role: 'console' };
const publish = (who: Identity, topic: string) => mayPublish(who, topic, parseTopic(topic)).ok;
const subscribe = (who: Identity, filter: string) => maySubscribe(who, filter).ok;

describe('topic rights for alert acknowledgements', () => {
  it('a vehicle acknowledges its own alerts only', () => {
    assert.equal(publish(truck, topics.alertAcks('truck-1')), true);
    assert.equal(publish(truck, topics.alertAcks('truck-2')), false);
    assert.equal(subscribe(truck, topics.alertAcks('truck-1')), false);
  });

  it('a dispatcher follows every cab\'s status and acknowledgements, a console neither acknowledgements nor anything new', () => {
    for (const filter of [topics.allAlertAcks, topics.allStatus, topics.alertAcks('truck-1')]) assert.equal(subscribe(dispatcher, filter), true, filter);
    assert.equal(subscribe(dispatcher, 'fleet/v1/+/telemetry'), false);
    assert.equal(subscribe(dispatcher, 'fleet/v1/#'), false);
    assert.equal(publish(dispatcher, topics.alertAcks('truck-1')), false);
    assert.equal(publish(dispatcher, topics.alerts('truck-1')), true);
    assert.equal(subscribe(consoleService, topics.allAlertAcks), false);
    assert.equal(subscribe(consoleService, topics.allStatus), true);
  });
});
