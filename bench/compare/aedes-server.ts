/**
 * The smallest Aedes broker: `node --import tsx bench/compare/aedes-server.ts PORT [--nodelay]`.
 * Aedes from node_modules with its defaults (memory persistence, local
 * mqemitter) over plain net on 127.0.0.1; `--nodelay` sets TCP_NODELAY on
 * accepted sockets. SIGTERM/SIGINT close it.
 */
import net from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2] ?? 1883);
const aedes = await Aedes.createBroker();
const server = net.createServer({ noDelay: process.argv.includes('--nodelay') }, aedes.handle);
server.listen(port, '127.0.0.1');

function shutdown(): void {
  server.close();
  aedes.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
