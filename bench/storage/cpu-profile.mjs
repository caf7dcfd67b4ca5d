// Preloaded into a child broker (NODE_OPTIONS=--import) by persistent-qos1.bench.ts --profile:
// `--cpu-prof` is not allowed in NODE_OPTIONS, so this starts the same sampling profiler through
// the inspector and writes `$TERN_PROFILE_DIR/<pid>.cpuprofile` when the process exits.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const dir = process.env.TERN_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  // An in-process session answers synchronously, so this works in an exit handler.
  process.on('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(`${dir}/${process.pid}.cpuprofile`, JSON.stringify(result.profile));
    });
  });
}
