// hearth serve checked with clients nobody here wrote: the official `openai` and `ollama` npm
// packages. One server (stories260K, a tiny llama2.c model with no chat template) serves every
// test but the gpt-oss one, which starts its own with a temporary store; structured output and
// tool calls are forced with a JSON-schema grammar, which is what makes a 260K-parameter model
// emit a well-formed call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
// Starts `hearth serve` and waits for its "listening on" line (shared with the web UI tests).
import { startServer } from '../ui/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = process.env.HEARTH_SHARED ?? path.join(here, '../../../shared');
const modelPath = path.join(shared, 'models/stories260K.gguf');

let server;
let baseURL;
let openai;
let ollama;

before(async () => {
  const s = await startServer(['--model', `stories=${modelPath}`, '--parallel', '8', '--ctx', '1024',
                               '--max-queue', '64', '--threads', '2']);
  server = s.proc;
  baseURL = s.url;
  openai = new OpenAI({ apiKey: 'unused', baseURL: `${baseURL}/v1`, maxRetries: 0 });
  ollama = new Ollama({ host: baseURL });
});

after(async () => {
  if (!server) return;
  const exited = new Promise((resolve) => server.on('exit', (code) => resolve(code)));
  server.kill('SIGTERM');
  assert.equal(await exited, 0, 'hearth serve exits 0 on SIGTERM');
});

const user = (content) => [{ role: 'user', content }];
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Tokyo'] } }, required: ['city'] },
  },
};
// Grammar that makes the model write {"name": "get_weather", "arguments": {...}}: the shape a
// template-less model's tool calls are parsed from.
const callSchema = {
  type: 'object',
  properties: { name: { type: 'string', enum: ['get_weather'] }, arguments: weatherTool.function.parameters },
  required: ['name', 'arguments'],
};
const personSchema = {
  type: 'object',
  properties: { name: { type: 'string', enum: ['Lily', 'Tom', 'Sue'] }, age: { type: 'integer' }, likes_dogs: { type: 'boolean' } },
  required: ['name', 'age', 'likes_dogs'],
};

async function metrics() {
  const res = await fetch(`${baseURL}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}
function metric(text, series) {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('openai: models.list and models.retrieve', async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['stories:latest']);
  const m = await openai.models.retrieve('stories');
  assert.equal(m.id, 'stories:latest');
  await assert.rejects(openai.models.retrieve('nope'), (e) => e.status === 404);
});

test('openai: chat completion, streamed and not, same greedy text', async () => {
  const params = { model: 'stories', messages: user('Tell me about a dog'), max_tokens: 24, temperature: 0 };
  const r = await openai.chat.completions.create(params);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 24);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 24);

  const stream = await openai.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(text, r.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 24);
});

test('openai: completions (legacy) with logprobs and stop', async () => {
  const r = await openai.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 20, temperature: 0, logprobs: 2 });
  assert.equal(r.object, 'text_completion');
  const c = r.choices[0];
  assert.equal(c.logprobs.tokens.join(''), c.text);
  assert.equal(c.logprobs.top_logprobs.length, 20);
  // Same text through Ollama's raw generate.
  const g = await ollama.generate({ model: 'stories', prompt: 'Once upon a time', raw: true, options: { temperature: 0, num_predict: 20 } });
  assert.equal(g.response, c.text);
  // A stop string cuts the text before it.
  const word = c.text.trim().split(/\s+/)[2];
  const s = await openai.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 20, temperature: 0, stop: [word] });
  assert.equal(s.choices[0].text, c.text.slice(0, c.text.indexOf(word)));
  assert.equal(s.choices[0].finish_reason, 'stop');
});

test('openai: response_format json_schema yields JSON with the required keys', async () => {
  for (const seed of [1, 2, 3]) {
    const r = await openai.chat.completions.create({
      model: 'stories', messages: user('Describe a child'), max_tokens: 80, seed,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema: personSchema, strict: true } },
    });
    const obj = JSON.parse(r.choices[0].message.content);
    for (const k of personSchema.required) assert.ok(k in obj, `missing ${k} in ${r.choices[0].message.content}`);
    assert.ok(Number.isInteger(obj.age));
    assert.equal(typeof obj.likes_dogs, 'boolean');
  }
});

test('openai: tool calls (forced by a schema grammar), streamed and not', async () => {
  const params = {
    model: 'stories', messages: user('What is the weather in Paris?'), tools: [weatherTool], max_tokens: 80, seed: 4,
    response_format: { type: 'json_schema', json_schema: { name: 'call', schema: callSchema } },
  };
  const r = await openai.chat.completions.create(params);
  const choice = r.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.ok(call.id.length > 0);
  assert.equal(call.function.name, 'get_weather');
  assert.ok(['Paris', 'Tokyo'].includes(JSON.parse(call.function.arguments).city));

  // The tool result goes back as a `tool` message; the server accepts the round trip.
  const followUp = await openai.chat.completions.create({
    model: 'stories', max_tokens: 8, temperature: 0,
    messages: [...params.messages, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temp_c": 21}' }],
  });
  assert.equal(typeof followUp.choices[0].message.content, 'string');

  const stream = await openai.chat.completions.create({ ...params, stream: true });
  const calls = [];
  let finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      for (const tc of c.delta.tool_calls ?? []) {
        calls[tc.index] ??= { id: '', name: '', arguments: '' };
        if (tc.id) calls[tc.index].id = tc.id;
        if (tc.function?.name) calls[tc.index].name += tc.function.name;
        if (tc.function?.arguments) calls[tc.index].arguments += tc.function.arguments;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(calls[0].name, 'get_weather');
  assert.ok(['Paris', 'Tokyo'].includes(JSON.parse(calls[0].arguments).city));
});

test('openai: errors arrive as typed client errors', async () => {
  await assert.rejects(openai.chat.completions.create({ model: 'nope', messages: user('x') }),
    (e) => e instanceof OpenAI.NotFoundError && /nope/.test(e.message));
  await assert.rejects(openai.chat.completions.create({ model: 'stories', messages: user('x'), n: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && e.error?.type === 'invalid_request_error');
});

test('ollama: list, show, ps, version', async () => {
  const list = await ollama.list();
  assert.equal(list.models.length, 1);
  assert.equal(list.models[0].name, 'stories:latest');
  assert.equal(list.models[0].details.family, 'llama');
  const show = await ollama.show({ model: 'stories' });
  assert.equal(show.details.format, 'gguf');
  assert.equal(show.model_info['general.architecture'], 'llama');
  await ollama.generate({ model: 'stories', prompt: '', keep_alive: '10m' });  // load
  const ps = await ollama.ps();
  assert.equal(ps.models[0].name, 'stories:latest');
  const v = await ollama.version();
  assert.equal(typeof v.version, 'string');
});

test('ollama: generate and chat, streamed and not', async () => {
  const opts = { temperature: 0, num_predict: 24 };
  const g = await ollama.generate({ model: 'stories', prompt: 'The cat', options: opts });
  assert.equal(g.done, true);
  assert.equal(g.done_reason, 'length');
  assert.equal(g.eval_count, 24);
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration']) assert.equal(typeof g[k], 'number');
  let text = '';
  let last;
  for await (const part of await ollama.generate({ model: 'stories', prompt: 'The cat', options: opts, stream: true })) {
    text += part.response;
    last = part;
  }
  assert.equal(text, g.response);
  assert.equal(last.done, true);

  const c = await ollama.chat({ model: 'stories', messages: user('Hello'), options: opts });
  assert.equal(c.message.role, 'assistant');
  let ctext = '';
  for await (const part of await ollama.chat({ model: 'stories', messages: user('Hello'), options: opts, stream: true })) {
    ctext += part.message.content;
  }
  assert.equal(ctext, c.message.content);
});

test('ollama: format schema and tool calls', async () => {
  const r = await ollama.chat({ model: 'stories', messages: user('Describe a child'), format: personSchema, options: { num_predict: 80, seed: 7 } });
  const obj = JSON.parse(r.message.content);
  for (const k of personSchema.required) assert.ok(k in obj);
  const t = await ollama.chat({ model: 'stories', messages: user('Weather in Tokyo?'), tools: [weatherTool], format: callSchema,
                                options: { num_predict: 80, seed: 8 } });
  assert.equal(t.message.tool_calls[0].function.name, 'get_weather');
  assert.ok(['Paris', 'Tokyo'].includes(t.message.tool_calls[0].function.arguments.city));
});

test('ollama: unknown model is a 404 ResponseError', async () => {
  await assert.rejects(ollama.generate({ model: 'nope', prompt: 'x' }), (e) => e.status_code === 404 && /nope/.test(e.error));
});

test('load: 32 concurrent streams with random lengths and aborts, then every KV block is free', async () => {
  let s = 12345;  // deterministic pseudo-random choices (mulberry32)
  const rand = () => { s |= 0; s = (s + 0x6d2b79f5) | 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  const prompts = ['Once upon a time', 'The little dog', 'Tom and Sue went', 'One day, Lily', 'The big tree'];
  const jobs = [];
  let aborted = 0;
  let finished = 0;
  for (let i = 0; i < 32; i++) {
    const maxTokens = 8 + Math.floor(rand() * 200);
    const abortAfter = rand() < 0.3 ? 1 + Math.floor(rand() * 10) : -1;  // chunks before aborting
    const useOllama = i % 4 === 3;
    jobs.push((async () => {
      const ac = new AbortController();
      let chunks = 0;
      let finish = null;
      try {
        if (useOllama) {
          const client = new Ollama({ host: baseURL });
          const stream = await client.generate({ model: 'stories', prompt: prompts[i % prompts.length], stream: true,
                                                 options: { num_predict: maxTokens, seed: i } });
          for await (const part of stream) {
            if (++chunks === abortAfter) { stream.abort(); break; }
            if (part.done) finish = part.done_reason;
          }
        } else {
          const stream = await openai.chat.completions.create(
            { model: 'stories', messages: user(prompts[i % prompts.length]), max_tokens: maxTokens, seed: i, stream: true },
            { signal: ac.signal });
          for await (const chunk of stream) {
            if (++chunks === abortAfter) { ac.abort(); break; }
            for (const c of chunk.choices) if (c.finish_reason) finish = c.finish_reason;
          }
        }
      } catch (e) {
        if (abortAfter < 0) throw e;  // only the aborting clients may see an abort error
      }
      if (abortAfter > 0 && chunks >= abortAfter) aborted++;
      else { assert.ok(finish === 'stop' || finish === 'length', `stream ${i} ended without a finish reason`); finished++; }
    })());
  }
  await Promise.all(jobs);
  assert.equal(aborted + finished, 32);
  assert.ok(aborted > 0, 'some clients aborted');
  // Cancelled sequences return their blocks at the scheduler's next step.
  let text = '';
  for (let i = 0; i < 100; i++) {
    text = await metrics();
    if (metric(text, 'hearth_kv_blocks{state="used"}') === 0 && metric(text, 'hearth_running_sequences') === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(metric(text, 'hearth_kv_blocks{state="used"}'), 0, text);
  assert.equal(metric(text, 'hearth_running_sequences'), 0);
  assert.equal(metric(text, 'hearth_queue_depth'), 0);
  const serverErrors = text.split('\n').filter((l) => /^hearth_requests_total\{.*status="5\d\d"\}/.test(l));
  assert.deepEqual(serverErrors, [], 'no 5xx responses');
});

// gpt-oss's Harmony format, through both clients. A second server with its own (temporary) model
// store gets a model created through /api/create: stories260K with a Harmony chat template
// that prefills the message header a gpt-oss model writes first (the schema grammar's JSON string
// starts with a quote, so the forced text continues that message's body):
//   analysis header + "plan<|end|><|start|>assistant<|channel|>final<|message|>Paris"
// gives thinking '"plan' and content 'Paris"'. reasoning_effort "low" makes the template prefill the
// final channel instead; offered tools make it prefill a call header (the grammar writes the arguments).
const harmonyTemplate =
  '{%- for m in messages -%}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{%- endfor -%}' +
  "{%- set effort = reasoning_effort if reasoning_effort is defined else 'medium' -%}" +
  '<|start|>system<|message|>Reasoning: {{ effort }}<|end|>' +
  '{%- if tools -%}<|start|>assistant to=functions.{{ tools[0].function.name }}<|channel|>commentary json<|message|>' +
  "{%- elif effort == 'low' -%}<|start|>assistant<|channel|>final<|message|>" +
  '{%- else -%}<|start|>assistant<|channel|>analysis<|message|>{%- endif -%}';
const harmonyOutput = { const: 'plan<|end|><|start|>assistant<|channel|>final<|message|>Paris' };
const argsSchema = { type: 'object', properties: { city: { const: 'Paris' } }, required: ['city'], additionalProperties: false };

test('gpt-oss (Harmony): thinking, reasoning effort and tool calls through both clients', async () => {
  const store = mkdtempSync(path.join(tmpdir(), 'hearth-clients-harmony-'));
  const s = await startServer(['--allowed-paths', path.dirname(modelPath), '--ctx', '512', '--threads', '2'],
                              { ...process.env, HEARTH_MODELS: store });
  try {
    const oc = new Ollama({ host: s.url });
    const oa = new OpenAI({ apiKey: 'unused', baseURL: `${s.url}/v1`, maxRetries: 0 });
    // ollama-js refuses a local path in `from`; the create request itself is plain HTTP.
    const created = await fetch(`${s.url}/api/create`, {
      method: 'POST', body: JSON.stringify({ model: 'gptoss', from: modelPath, template: harmonyTemplate, stream: false }),
    });
    assert.equal(created.status, 200, await created.clone().text());
    const show = await oc.show({ model: 'gptoss' });
    assert.deepEqual(show.capabilities, ['completion', 'tools', 'thinking']);
    const opts = { temperature: 0, num_predict: 120 };
    const q = user('Capital of France?');

    // Ollama: message.thinking beside message.content, streamed and not; think levels.
    const c = await oc.chat({ model: 'gptoss', messages: q, format: harmonyOutput, think: 'high', options: opts });
    assert.equal(c.message.thinking, '"plan');
    assert.equal(c.message.content.trim(), 'Paris"');
    let thinking = '';
    let content = '';
    for await (const part of await oc.chat({ model: 'gptoss', messages: q, format: harmonyOutput, stream: true, options: opts })) {
      thinking += part.message.thinking ?? '';
      content += part.message.content;
    }
    assert.equal(thinking, '"plan');
    assert.equal(content, c.message.content);
    const low = await oc.chat({ model: 'gptoss', messages: q, format: harmonyOutput, think: 'low', options: opts });
    assert.equal(low.message.thinking, undefined);
    assert.equal(low.message.content.trim(), '"planParis"');
    const off = await oc.chat({ model: 'gptoss', messages: q, format: harmonyOutput, think: false, options: opts });
    assert.equal(off.message.thinking, undefined);
    const g = await oc.generate({ model: 'gptoss', prompt: 'Capital of France?', format: harmonyOutput, options: opts });
    assert.equal(g.thinking, '"plan');
    assert.equal(g.response.trim(), 'Paris"');

    // Ollama tool call: message.tool_calls with arguments as an object.
    const t = await oc.chat({ model: 'gptoss', messages: q, tools: [weatherTool], format: argsSchema, options: opts });
    assert.equal(t.message.tool_calls.length, 1);
    assert.equal(t.message.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(t.message.tool_calls[0].function.arguments, { city: 'Paris' });

    // OpenAI: reasoning_content in the message and in streamed deltas; reasoning_effort.
    const rf = { type: 'json_schema', json_schema: { name: 'h', schema: harmonyOutput } };
    const r = await oa.chat.completions.create({ model: 'gptoss', messages: q, response_format: rf, max_tokens: 120, temperature: 0,
                                                 reasoning_effort: 'high' });
    assert.equal(r.choices[0].message.reasoning_content, '"plan');
    assert.equal(r.choices[0].message.content.trim(), 'Paris"');
    let reasoning = '';
    let text = '';
    for await (const chunk of await oa.chat.completions.create({ model: 'gptoss', messages: q, response_format: rf, max_tokens: 120,
                                                                 temperature: 0, stream: true })) {
      for (const ch of chunk.choices) {
        reasoning += ch.delta.reasoning_content ?? '';
        text += ch.delta.content ?? '';
      }
    }
    assert.equal(reasoning, '"plan');
    assert.equal(text, r.choices[0].message.content);
    const rl = await oa.chat.completions.create({ model: 'gptoss', messages: q, response_format: rf, max_tokens: 120, temperature: 0,
                                                  reasoning_effort: 'low' });
    assert.equal(rl.choices[0].message.reasoning_content, undefined);

    // OpenAI tool call, then the round trip with the reasoning sent back.
    const tc = await oa.chat.completions.create({
      model: 'gptoss', messages: q, tools: [weatherTool], max_tokens: 120, temperature: 0,
      response_format: { type: 'json_schema', json_schema: { name: 'args', schema: argsSchema } },
    });
    assert.equal(tc.choices[0].finish_reason, 'tool_calls');
    const call = tc.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
    const follow = await oa.chat.completions.create({
      model: 'gptoss', max_tokens: 8, temperature: 0,
      messages: [...q, { ...tc.choices[0].message, reasoning_content: 'Need the weather.' },
                 { role: 'tool', tool_call_id: call.id, content: '{"temp_c": 21}' }],
    });
    assert.equal(typeof follow.choices[0].message.content, 'string');
  } finally {
    const exited = new Promise((resolve) => s.proc.on('exit', (code) => resolve(code)));
    s.proc.kill('SIGTERM');
    assert.equal(await exited, 0, `hearth serve exits 0 on SIGTERM: ${s.tail()}`);
    rmSync(store, { recursive: true, force: true });
  }
});
