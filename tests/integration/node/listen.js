// listen.js - a node-postgres client driven line by line on stdin by
// tests/integration/test_listen_txn.py (the same commands as
// java/JdbcListen.java):
//
//   listen CH | unlisten CH | unlisten * | notify CH PAYLOAD | wait N MS | pid | quit
//
// It prints "READY" once connected, "OK <command>" after each statement,
// "NOTE <channel>\t<payload>\t<pid>" for each notification, "WAITED <n>"
// (notifications so far) after a wait, "PID <n>" (its processID) and
// "ERR <message>" on an error.  NOTIFY goes through pg_notify($1, $2), a
// parameterised query: node-postgres sends it with the extended protocol.
'use strict';

const { Client } = require('pg');
const readline = require('readline');

const [host, port, user, password, database] = process.argv.slice(2);
const client = new Client({ host, port: Number(port), user, password, database });
let notes = 0;
let wake = null;

function out(line) {
  process.stdout.write(line + '\n');
}

function ident(name) {
  return '"' + name.replace(/"/g, '""') + '"';
}

client.on('notification', (m) => {
  notes++;
  out(`NOTE ${m.channel}\t${m.payload}\t${m.processId}`);
  if (wake) wake();
});
client.on('error', (e) => {
  out(`ERR ${e.message}`);
  process.exit(2);
});

function waitFor(n, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      wake = null;
      resolve();
    }
    wake = () => {
      if (notes >= n) done();
    };
    wake();
  });
}

async function run(line) {
  const words = line.split(' ');
  const cmd = words[0];
  switch (cmd) {
    case 'listen':
      await client.query(`LISTEN ${ident(words[1])}`);
      break;
    case 'unlisten':
      await client.query(words[1] === '*' ? 'UNLISTEN *' : `UNLISTEN ${ident(words[1])}`);
      break;
    case 'notify':
      await client.query('SELECT pg_notify($1, $2)', [words[1], words.slice(2).join(' ')]);
      break;
    case 'wait':
      await waitFor(Number(words[1]), Number(words[2]));
      out(`WAITED ${notes}`);
      return;
    case 'pid':
      out(`PID ${client.processID}`);
      return;
    case 'quit':
      await client.end();
      process.exit(0);
      return;
    default:
      out(`ERR unknown command ${cmd}`);
      return;
  }
  out(`OK ${cmd}`);
}

async function main() {
  await client.connect();
  out('READY');
  const rl = readline.createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    chain = chain.then(() => run(line)).catch((e) => out(`ERR ${e.message}`));
  });
  rl.on('close', () => {
    chain.then(() => client.end()).then(() => process.exit(0));
  });
}

main().catch((e) => {
  out(`ERR ${e.message}`);
  process.exit(2);
});
