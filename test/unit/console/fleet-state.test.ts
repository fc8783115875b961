import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, it } from 'vitest';
import { ROOT } from '../../support/paths.js';

/** The console page's state, as the browser loads it: a plain ES module with no types of its own. */
const MODULE = pathToFileURL(join(ROOT, 'cloud', 'console', 'web', 'fleet-state.js')).href;

interface Value {
  value?: number;
  ts: number;
}
interface Vehicle {
  id: string;
  online: boolean;
  statusAt: number | null;
  lastSeen: number | null;
  values: Record<string, Value>;
}
interface PageAlert {
  id: string;
  vehicle: string;
  state: 'active' | 'acknowledged' | 'cleared';
  severity: 'info' | 'warning' | 'critical';
}
interface FleetState {
  vehicles: Map<string, Vehicle>;
  alerts: Map<string, PageAlert>;
  setVehicles(list: { id: string; online: boolean; statusAt: number | null; values: Record<string, Value> }[]): string[];
  applyValues(frame: { id: string; values: Record<string, Value> }[]): string[];
  applyStatus(status: { vehicle: string; online: boolean; at: number }): void;
  upsertAlert(alert: PageAlert): 'new' | 'changed' | undefined;
  alertSummary(id: string): { active: number; level: string | null };
}

let FleetStateClass: new () => FleetState;
beforeAll(async () => {
  ({ FleetState: FleetStateClass } = (await import(MODULE)) as { FleetState: new () => FleetState });
});

const alert = (id: string, state: PageAlert['state'], severity: PageAlert['severity'] = 'critical', vehicle = 'truck-1'): PageAlert => ({
  id,
  vehicle,
  state,
  severity,
});

describe('the console page state (cloud/console/web/fleet-state.js)', () => {
  it('is an ES module that Node itself loads, with nothing of the browser needed', () => {
    const script = `const { FleetState } = await import(${JSON.stringify(MODULE)}); const s = new FleetState(); s.applyStatus({ vehicle: 'v', online: true, at: 1 }); console.log(JSON.stringify([...s.vehicles.keys()]));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '["v"]');
  });

  describe('vehicles', () => {
    it('takes a snapshot: status, values and the newest time seen, and names the vehicles it touched', () => {
      const s = new FleetStateClass();
      const touched = s.setVehicles([
        { id: 'truck-1', online: true, statusAt: 100, values: { engine_temp: { value: 90, ts: 1000 }, speed: { value: 50, ts: 1200 } } },
        { id: 'truck-2', online: false, statusAt: null, values: {} },
      ]);
      assert.deepEqual(touched, ['truck-1', 'truck-2']);
      assert.deepEqual(s.vehicles.get('truck-1'), {
        id: 'truck-1',
        online: true,
        statusAt: 100,
        lastSeen: 1200,
        values: { engine_temp: { value: 90, ts: 1000 }, speed: { value: 50, ts: 1200 } },
      });
      assert.deepEqual(s.vehicles.get('truck-2'), { id: 'truck-2', online: false, statusAt: null, lastSeen: null, values: {} });
    });

    it('never lets an older value replace a newer one, whichever path brings it', () => {
      const s = new FleetStateClass();
      s.applyValues([{ id: 'truck-1', values: { engine_temp: { value: 95, ts: 2000 } } }]);
      // A snapshot requested before that frame arrives after it.
      s.setVehicles([
        {
          id: 'truck-1',
          online: true,
          statusAt: 1,
          values: { engine_temp: { value: 90, ts: 1000 }, container_temp: { value: 4, ts: 1500 } },
        },
      ]);
      const v = s.vehicles.get('truck-1')!;
      assert.deepEqual(v.values, { engine_temp: { value: 95, ts: 2000 }, container_temp: { value: 4, ts: 1500 } });
      assert.equal(v.lastSeen, 2000);
      s.applyValues([{ id: 'truck-1', values: { engine_temp: { value: 96, ts: 2000 } } }]);
      assert.equal(v.values.engine_temp.value, 96, 'the same time: the later message wins');
    });

    it('applies live values to vehicles it did not know yet, and names them', () => {
      const s = new FleetStateClass();
      assert.deepEqual(
        s.applyValues([
          { id: 'truck-3', values: { rpm: { value: 800, ts: 5 } } },
          { id: 'truck-4', values: {} },
        ]),
        ['truck-3', 'truck-4'],
      );
      assert.deepEqual([...s.vehicles.keys()], ['truck-3', 'truck-4']);
      assert.equal(s.vehicles.get('truck-3')!.online, false, 'offline until a status says otherwise');
    });

    it("takes status documents in the broker's order, whatever their time says (a Last Will is written at connect)", () => {
      const s = new FleetStateClass();
      s.applyStatus({ vehicle: 'truck-1', online: true, at: 5000 });
      s.applyStatus({ vehicle: 'truck-1', online: false, at: 1000 });
      assert.deepEqual([s.vehicles.get('truck-1')!.online, s.vehicles.get('truck-1')!.statusAt], [false, 1000]);
    });
  });

  describe('alerts', () => {
    it('keeps one entry per alert id: new, then changed, however often it is loaded again', () => {
      const s = new FleetStateClass();
      assert.equal(s.upsertAlert(alert('a1', 'active')), 'new');
      assert.equal(s.upsertAlert(alert('a1', 'active')), 'changed');
      assert.equal(s.upsertAlert(alert('a1', 'acknowledged')), 'changed');
      assert.equal(s.alerts.size, 1);
      assert.equal(s.alerts.get('a1')!.state, 'acknowledged');
    });

    it('never moves an alert backwards in its lifecycle (a late answer or a replayed event)', () => {
      const s = new FleetStateClass();
      s.upsertAlert(alert('a1', 'cleared'));
      assert.equal(s.upsertAlert(alert('a1', 'acknowledged')), undefined);
      assert.equal(s.upsertAlert(alert('a1', 'active')), undefined);
      assert.equal(s.alerts.get('a1')!.state, 'cleared');
      assert.deepEqual(s.alertSummary('truck-1'), { active: 0, level: null }, 'and it stays closed');
      s.upsertAlert(alert('a2', 'acknowledged'));
      assert.equal(s.upsertAlert(alert('a2', 'active')), undefined);
    });

    it("sums up a vehicle's open alerts: how many are active, and the loudest state", () => {
      const s = new FleetStateClass();
      assert.deepEqual(s.alertSummary('truck-1'), { active: 0, level: null }, 'none');
      s.upsertAlert(alert('ack', 'acknowledged', 'critical'));
      assert.deepEqual(s.alertSummary('truck-1'), { active: 0, level: 'acknowledged' }, 'only acknowledged ones');
      s.upsertAlert(alert('w', 'active', 'warning'));
      assert.deepEqual(s.alertSummary('truck-1'), { active: 1, level: 'warning' }, 'an active one is louder than an acknowledged critical');
      s.upsertAlert(alert('i', 'active', 'info'));
      assert.deepEqual(s.alertSummary('truck-1'), { active: 2, level: 'warning' });
      s.upsertAlert(alert('c', 'active', 'critical'));
      assert.deepEqual(s.alertSummary('truck-1'), { active: 3, level: 'critical' });
      s.upsertAlert(alert('c', 'cleared', 'critical'));
      s.upsertAlert(alert('w', 'acknowledged', 'warning'));
      assert.deepEqual(s.alertSummary('truck-1'), { active: 1, level: 'info' });
      assert.deepEqual(s.alertSummary('truck-2'), { active: 0, level: null }, "another vehicle's alerts are its own");
    });

    it('an active alert counts whatever order the open ones arrived in', () => {
      const s = new FleetStateClass();
      s.upsertAlert(alert('i', 'active', 'info'));
      s.upsertAlert(alert('ack', 'acknowledged', 'critical'));
      assert.deepEqual(s.alertSummary('truck-1'), { active: 1, level: 'info' });
    });
  });
});
