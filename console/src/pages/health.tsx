// Health: the processes' metrics as GET /api/v1/health sums them.
import { get } from '../api';
import { ago, bytes } from '../lib';
import { Dl, ErrorBox, Head, useLoad } from '../ui';

const rate = (x: number | undefined) => (x === undefined || x === null ? '-' : x.toFixed(1));

export function Health() {
  const h = useLoad(() => get('/health'), [], 5000);
  const d = h.data;
  return (
    <section aria-labelledby="h-health">
      <h1 id="h-health">Health</h1>
      <ErrorBox error={h.error} />
      {d && (
        <>
          <div class="cols">
            <div class="card">
              <h2>Totals</h2>
              <Dl
                rows={[
                  ['Polls per second', rate(d.totals?.pollsPerSecond)],
                  ['Requests per second', rate(d.totals?.requestsPerSecond)],
                  ['Errors per second', rate(d.totals?.errorsPerSecond)],
                  ['VENs', d.totals?.vens],
                  ['VENs online', d.totals?.vensOnline],
                  ['As of', d.generatedAt],
                ]}
              />
            </div>
            <div class="card">
              <h2>Redis and scheduler</h2>
              <Dl
                rows={[
                  ['Memory used', bytes(d.redis?.usedMemory)],
                  ['Memory limit', d.redis?.maxMemory ? bytes(d.redis.maxMemory) : 'none'],
                  ['Keys', d.redis?.keys],
                  ['Role', d.redis?.role],
                  ['Replicas', d.redis?.connectedReplicas],
                  ['Scheduler leader', d.scheduler?.leader ?? 'none'],
                  ['Leader term', d.scheduler?.term],
                ]}
              />
            </div>
          </div>
          <div class="card">
            <h2>Processes</h2>
            <table class="grid">
              <Head cols={['Role', 'Id', 'Host', 'pid', 'Version', 'Started', 'Last seen', 'Alive', 'req/s', 'polls/s', 'errors/s', 'In flight']} />
              <tbody>
                {(d.processes ?? []).map((p: any) => (
                  <tr class={p.alive ? '' : 'dead'}>
                    <td>{p.role}</td>
                    <td>{p.id}</td>
                    <td>{p.host}</td>
                    <td>{p.pid}</td>
                    <td>{p.version}</td>
                    <td>{ago(p.startedAt)}</td>
                    <td>{ago(p.lastSeen)}</td>
                    <td>{p.alive ? 'yes' : 'no'}</td>
                    <td>{rate(p.requestsPerSecond)}</td>
                    <td>{rate(p.pollsPerSecond)}</td>
                    <td>{rate(p.errorsPerSecond)}</td>
                    <td>{p.inFlight ?? '-'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
