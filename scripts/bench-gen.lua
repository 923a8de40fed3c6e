-- bench-gen.lua - writes the request bodies scripts/bench.sh sends:
--   luajit scripts/bench-gen.lua OUTDIR
-- Jobs are sent as bytecode made by `luajit -b`, base64 without line
-- breaks, like a client that compiled ahead.  Contexts are deterministic.
local out = assert(arg[1], "usage: bench-gen.lua OUTDIR")

local function write(path, text)
  local f = assert(io.open(path, "wb")); f:write(text); f:close()
end
local function read(path)
  local f = assert(io.open(path, "rb")); local s = f:read("*a"); f:close(); return s
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local parts = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {}
    for k = 3, 0, -1 do
      local v = math.floor(n / 64 ^ k) % 64
      q[#q + 1] = alphabet:sub(v + 1, v + 1)
    end
    if not b then q[3] = "=" end
    if not c then q[4] = "=" end
    parts[#parts + 1] = table.concat(q)
  end
  return table.concat(parts)
end

local function bytecode(name, source)
  local src, bc = out .. "/" .. name .. ".lua", out .. "/" .. name .. ".luac"
  write(src, source)
  assert(os.execute(string.format("luajit -b %q %q", src, bc)) == 0, "luajit -b failed")
  return base64(read(bc))
end

local seed = 12345
local function random(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
local words = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel" }

-- {"items":[...]} of about `bytes` bytes; returns the JSON and the qty sum.
local function items_context(bytes)
  local parts, size, sum, i = {}, 12, 0, 0
  while size < bytes do
    i = i + 1
    local qty = random(100)
    sum = sum + qty
    local item = string.format(
      '{"id":%d,"name":"item-%05d-%s","sku":"SKU-%08d","price":%d.%02d,"qty":%d,"tag":"%s-%s","note":"%s %s %s %s"}',
      i, i, words[random(8) + 1], random(100000000), random(1000), random(100), qty,
      words[random(8) + 1], words[random(8) + 1], words[random(8) + 1],
      words[random(8) + 1], words[random(8) + 1], words[random(8) + 1])
    parts[#parts + 1] = item
    size = size + #item + 1
  end
  return '{"items":[' .. table.concat(parts, ",") .. ']}', i, sum
end

local function body(b64, context)
  return '{"bytecode":"' .. b64 .. '","context":' .. context .. ',"timeout_ms":10000}'
end

local hello = bytecode("hello", 'return ctx.message .. " from Lua"\n')
write(out .. "/hello.json", body(hello, '{"message":"Hello","params":{"id":"123"}}'))
write(out .. "/hello.expect", '"Hello from Lua"')

local compute = bytecode("compute", "local s=0 for i=1,ctx.n do s=s+(i%7) end return s\n")
write(out .. "/compute.json", body(compute, '{"n":100000}'))
write(out .. "/compute.expect", "300000")

local sum_items = bytecode("items", [[
local items = ctx.items
local s = 0
for i = 1, #items do s = s + items[i].qty end
return { count = #items, sum = s, first = items[1].name }
]])
local sizes = { bigctx = 66 * 1024, ctx1k = 1024, ctx16k = 16 * 1024,
  ctx256k = 256 * 1024, ctx4m = 4 * 1024 * 1024 }
for _, name in ipairs({ "bigctx", "ctx1k", "ctx16k", "ctx256k", "ctx4m" }) do
  seed = 12345
  local context, count, sum = items_context(sizes[name])
  write(out .. "/" .. name .. ".json", body(sum_items, context))
  write(out .. "/" .. name .. ".expect", string.format('"sum":%d', sum))
end

local runaway = {
  jit = "while true do end",
  interpreted = "while true do coroutine.wrap(function() end)() end",
  backtrack = "return string.find(string.rep('a', 40), string.rep('a*', 30) .. 'b')",
}
for name, source in pairs(runaway) do
  write(out .. "/runaway_" .. name .. ".json",
    '{"source":"' .. source .. '","timeout_ms":100}')
end
