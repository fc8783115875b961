import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { GatewayList } from '../../../agent/gateway-list.js';
import { gatewayAddresses, gatewayUrlsProblem, mqttServers } from '../../../shared/gateway-urls.js';

describe('gateway URLs', () => {
  it('reads one or several, comma-separated, with the default port of each scheme', () => {
    assert.deepEqual(gatewayAddresses('mqtt://gw-1.example:1884, mqtts://gw-2.example,mqtt://[::1]'), [
      { url: 'mqtt://gw-1.example:1884', secure: false, host: 'gw-1.example', port: 1884 },
      { url: 'mqtts://gw-2.example', secure: true, host: 'gw-2.example', port: 8883 },
      { url: 'mqtt://[::1]', secure: false, host: '::1', port: 1883 },
    ]);
  });

  it('says what is wrong with a setting it cannot use', () => {
    assert.equal(gatewayUrlsProblem('mqtt://a:1883,mqtts://b:8883'), undefined);
    assert.equal(gatewayUrlsProblem(' , '), 'needs at least one gateway URL');
    assert.equal(gatewayUrlsProblem('mqtt://a:1883,gw-2:1883'), 'gw-2:1883: a gateway URL starts with mqtt:// or mqtts://');
    assert.equal(gatewayUrlsProblem('not a url'), 'not a url is not a URL');
    assert.equal(gatewayUrlsProblem('ws://a:80'), 'ws://a:80: a gateway URL starts with mqtt:// or mqtts://');
    assert.equal(
      gatewayUrlsProblem('mqtt://truck:secret@a:1883'),
      'mqtt://truck:secret@a:1883: give the credentials as username and password, not in the URL',
    );
    assert.equal(gatewayUrlsProblem('mqtt://a:1883,mqtt://a:1883'), 'names a gateway twice');
  });

  it('gives a service the whole list for mqtt.js to go round, starting with the first', () => {
    assert.deepEqual(mqttServers('mqtts://gw-1.example,mqtt://[::1]:1884'), {
      protocol: 'mqtts',
      servers: [
        { host: 'gw-1.example', port: 8883, protocol: 'mqtts' },
        { host: '::1', port: 1884, protocol: 'mqtt' },
      ],
    });
  });
});

describe('the order an agent tries its gateways in', () => {
  const three = gatewayAddresses('mqtt://a:1,mqtt://b:2,mqtt://c:3');

  it('starts each vehicle on the gateway its id hashes to: always the same one, and a fleet spread over all', () => {
    const starts = (vehicle: string) => new GatewayList(three, vehicle).current.url;
    assert.equal(starts('truck-0042'), starts('truck-0042'));
    const used = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const url = starts(`truck-${i}`);
      used.set(url, (used.get(url) ?? 0) + 1);
    }
    assert.equal(used.size, 3);
    for (const [url, n] of used) assert.ok(n > 60, `${url} starts ${n} of 300 trucks`);
  });

  it('moves on to the next one after each failure, backing off by rounds over the whole list', () => {
    const list = new GatewayList(three, 'truck-1');
    const order = [list.current.url];
    const rounds: number[] = [];
    for (let i = 0; i < 7; i++) {
      rounds.push(list.moveOn());
      order.push(list.current.url);
    }
    const start = three.findIndex((g) => g.url === order[0]);
    assert.deepEqual(
      order,
      Array.from({ length: 8 }, (_, i) => three[(start + i) % 3]!.url),
    );
    assert.deepEqual(rounds, [0, 0, 0, 1, 1, 1, 2]);
    list.connected();
    assert.equal(list.moveOn(), 0, 'a connection starts the backoff afresh');
  });

  it('with one gateway, backs off as a single gateway always did', () => {
    const list = new GatewayList(gatewayAddresses('mqtt://a:1'), 'truck-1');
    assert.deepEqual([list.moveOn(), list.moveOn(), list.moveOn()], [0, 1, 2]);
    assert.equal(list.current.url, 'mqtt://a:1');
  });
});
