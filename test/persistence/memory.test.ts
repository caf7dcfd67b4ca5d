import { MemoryPersistence } from '../../src/persistence/memory.js';
import { persistenceContract } from './contract.js';

persistenceContract('memory', async (opts) => new MemoryPersistence(opts));
