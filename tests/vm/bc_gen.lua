-- bc_gen.lua: programs and dumps for the bytecode verifier corpus.
--
--   luajit bc_gen.lua gen OUTDIR N        write N random programs plus the
--                                         fixed feature programs to OUTDIR
--   luajit bc_gen.lua dump FILE PREFIX [run|require=MOD]
--                                         string.dump (stripped and not) of
--                                         the chunk and every function value
--                                         reachable from it, as PREFIX.<n>.bc
--
-- The generated programs terminate quickly and only touch their own
-- locals, so "run" is safe for them; running lets the JIT and ISNEXT
-- despecialisation patch bytecode before it is dumped again.

local mode = arg[1]

-- ---------------------------------------------------------------- generator

local rnd
do
  local seed = 12345
  rnd = function(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n + 1 end
end

local function pick(t) return t[rnd(#t)] end

local constants = {
  "0", "1", "-1", "0.5", "-0.0", "1e308", "-1e308", "2^53", "1e-310", "4294967296",
  "2147483647", "-2147483648", "0x7fffffff", "3.0", "65536", "1/0", "-1/0",
  "'s'", "\"long string with spaces\"", "''", "nil", "true", "false", "0xffffffff",
}

local gen_expr
local function var(ctx) return ctx.vars[rnd(#ctx.vars)] end

gen_expr = function(ctx, depth)
  depth = depth or 0
  local k = depth > 3 and rnd(3) or rnd(16)
  if k == 1 then return pick(constants)
  elseif k == 2 or k == 3 then return var(ctx)
  elseif k == 4 then return "(" .. gen_expr(ctx, depth+1) .. " " .. pick{"+","-","*","/","%","^"} .. " " .. pick{"1","2.5","-3"} .. ")"
  elseif k == 5 then return "(" .. pick{"1","7","0.25"} .. " " .. pick{"+","-","*","/","%"} .. " " .. gen_expr(ctx, depth+1) .. ")"
  elseif k == 6 then return "(" .. gen_expr(ctx, depth+1) .. " " .. pick{"==","~=","<","<=",">",">="} .. " " .. gen_expr(ctx, depth+1) .. ")"
  elseif k == 7 then return "(" .. pick(constants) .. " " .. pick{"==","~="} .. " " .. var(ctx) .. ")"
  elseif k == 8 then return "(" .. gen_expr(ctx, depth+1) .. " " .. pick{"and","or"} .. " " .. gen_expr(ctx, depth+1) .. ")"
  elseif k == 9 then return "(not " .. gen_expr(ctx, depth+1) .. ")"
  elseif k == 10 then return "tostring(" .. gen_expr(ctx, depth+1) .. ") .. 'a' .. tostring(" .. var(ctx) .. ") .. 'b'"
  elseif k == 11 then return "{" .. gen_expr(ctx, depth+1) .. ", x = " .. gen_expr(ctx, depth+1) .. ", [" .. pick{"1","'k'","2.5","true","-7"} .. "] = 1, {1, 2, {a = 'b'}}}"
  elseif k == 12 then return "#{" .. gen_expr(ctx, depth+1) .. "}"
  elseif k == 13 then return "(function(...) return select('#', ...), ... end)(" .. gen_expr(ctx, depth+1) .. ")"
  elseif k == 14 then return "obj:m(" .. gen_expr(ctx, depth+1) .. ")"
  elseif k == 15 then return "-" .. "(tonumber(" .. var(ctx) .. ") or 0)"
  else return "(" .. var(ctx) .. " " .. pick{"<", ">", "<=", ">="} .. " " .. pick{"1", "'a'"} .. " or 1 " .. pick{"<", ">=", "==" } .. " " .. "2)"
  end
end

local gen_block
local function gen_stmt(ctx, depth)
  local k = depth > 3 and rnd(4) or rnd(20)
  local v = var(ctx)
  if k == 1 then return v .. " = " .. gen_expr(ctx)
  elseif k == 2 then
    local n = "l" .. rnd(1000); ctx.vars[#ctx.vars+1] = n
    return "local " .. n .. " = " .. gen_expr(ctx)
  elseif k == 3 then return "local a1, a2, a3 = " .. gen_expr(ctx) .. ", " .. gen_expr(ctx) .. "; " .. v .. ", a1 = a2, a3"
  elseif k == 4 then return "sink(" .. gen_expr(ctx) .. ")"
  elseif k == 5 then return "if " .. gen_expr(ctx) .. " then " .. gen_block(ctx, depth+1) .. " elseif " .. gen_expr(ctx) .. " then " .. gen_block(ctx, depth+1) .. " else " .. gen_block(ctx, depth+1) .. " end"
  elseif k == 6 then return "for i = " .. pick{"1","3","-2"} .. ", " .. pick{"3","1","0"} .. (rnd(2) == 1 and (", " .. pick{"1","-1","0.5"}) or "") .. " do " .. gen_block(ctx, depth+1, "i") .. " end"
  elseif k == 7 then return "for k, val in pairs({1, 2, x = 3}) do " .. gen_block(ctx, depth+1, "k") .. " end"
  elseif k == 8 then return "for k, val in ipairs({4, 5}) do " .. gen_block(ctx, depth+1, "val") .. " end"
  elseif k == 9 then return "for k in next, {a = 1, b = 2} do " .. gen_block(ctx, depth+1, "k") .. " end"
  elseif k == 10 then return "do local n = 0; while n < 3 do n = n + 1; " .. gen_block(ctx, depth+1, "n") .. " if n > 5 then break end end end"
  elseif k == 11 then return "do local n = 0; repeat local m = n; n = n + 1; " .. gen_block(ctx, depth+1, "m") .. " until n >= 2 or m > 9 end"
  elseif k == 12 then return "for i = 1, 2 do if i == 1 then goto continue end; " .. gen_block(ctx, depth+1, "i") .. " ::continue:: end"
  elseif k == 13 then return "fns[#fns+1] = function(...) local u = " .. v .. "; return u, ... end"
  elseif k == 14 then return "for i = 1, 2 do fns[#fns+1] = function() i = i + 1; return i end end"
  elseif k == 15 then return "for k, w in pairs({7, 8}) do fns[#fns+1] = function() return k, w end; if k then break end end"
  elseif k == 16 then return "do local t = {" .. gen_expr(ctx) .. ", " .. "(function() return 1, 2, 3 end)()} ; sink(t) end"
  elseif k == 17 then return "do local c = 0; ::top:: c = c + 1; if c < 3 then goto top end end"
  elseif k == 18 then return "sink((function(a, b, ...) if a then return b, ... end return sink(a) end)(" .. gen_expr(ctx) .. ", 2, 3))"
  elseif k == 19 then return "for _, f in ipairs(fns) do sink(pcall(f)) ; break end"
  else return "while true do " .. gen_block(ctx, depth+1) .. " break end"
  end
end

gen_block = function(ctx, depth, extra)
  local saved = #ctx.vars
  if extra then ctx.vars[#ctx.vars+1] = extra end
  local out = {}
  for _ = 1, rnd(4) do out[#out+1] = gen_stmt(ctx, depth) end
  for i = #ctx.vars, saved + 1, -1 do ctx.vars[i] = nil end
  return table.concat(out, "; ")
end

local prologue = [[
local fns = {}
local sink = function(...) return ... end
local obj = { m = function(self, x) return x end }
local g1, g2, g3 = 1, "two", 3.5
]]

local function random_program()
  local ctx = { vars = { "g1", "g2", "g3" } }
  local body = {}
  for _ = 1, 6 do
    body[#body+1] = "do local function body(...) " .. gen_block(ctx, 0) .. " end; pcall(body, 1, 2) end"
  end
  return prologue .. table.concat(body, "\n") .. "\nreturn fns\n"
end

-- Fixed programs for the features a random walk reaches rarely.
local function many_constants()
  local out = { "local t = {}" }
  for i = 1, 300 do
    out[#out+1] = ("t[%d] = %s + %d.%d .. 'k%d'"):format(i, "0.123456", i, i, i)
  end
  out[#out+1] = "return function() local s = 0; " .. ("s = s + 0.5; "):rep(10) .. "return s, t end"
  return table.concat(out, "\n")
end

local function deep_nesting()
  local open, close = {}, {}
  for i = 1, 40 do
    open[#open+1] = ("local u%d = %d; return function(x%d) local y = u%d + x%d; "):format(i, i, i, i, i)
    close[#close+1] = " end"
  end
  return "local F = (function() " .. table.concat(open) .. "return y" .. table.concat(close) .. " end)\nreturn F"
end

local feature_program = [=[
local fns = {}
local function iter(s, c) if c < 3 then return c + 1 end end
for i in iter, nil, 0 do fns[#fns+1] = function() return i end end
for i = 10, 1, -2 do local j = i; fns[#fns+1] = function() j = j + 1; return j end end
for k, v in next, {1, 2, 3} do fns[#fns+1] = function() return k + v end end
local a, b, c, d, e = 1, 2, 3
a, b, c = c, a, b
local t = { [1] = 1, [2.5] = 2, x = 3, ["y z"] = 4, [true] = 5, [-0.0] = 6, [1e300] = 7,
            nested = { deep = { deeper = { "leaf", 1, 2.5, true, false } } }, 1, 2, 3 }
local function va(...) local n = select('#', ...); local x, y = ...; return n, x, y, ... end
local function tail(n) if n <= 0 then return "done" end return tail(n - 1) end
local s = "a" .. "b" .. tostring(a) .. "c" .. tostring(b) .. "d"
local ops = { 1 / a, 1 % b, 2 - a, a and b, a or c, (a and b) or c, not (a == b) }
glob_set_for_gset = a
local cmp = (a < 1) or (1 < a) or (a <= 2) or (2 >= a) or (a == "x") or ("x" ~= a) or (a == nil) or (nil ~= a) or (a == true)
local m = { v = 1 }
function m:get(x) return self.v + x end
function m.static(x) return x end
local neg, big, ival, tiny = -0.0, 1e308, 3.0, 5e-324
local r = { va(1, 2, 3) }
local q = { va(...) }
local w = 0
while w < 5 do w = w + 1; if w == 3 then break end end
repeat local z = w; w = w - 1 until z < 2
do local x = 0 ::again:: x = x + 1 if x < 3 then goto again end end
local function lp(n) local acc = 0; for i = 1, n do for j = i, n do acc = acc + i * j end end; return acc end
for _ = 1, 200 do lp(5) end
for _ = 1, 100 do for k, v in pairs(t) do s = k end end
return fns, t, va, tail, m, lp, cmp, neg, big, ival, tiny, r, q, s
]=]

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

if mode == "gen" then
  local dir, n = arg[2], tonumber(arg[3] or "50")
  write(dir .. "/features.lua", feature_program)
  write(dir .. "/many_constants.lua", many_constants())
  write(dir .. "/deep_nesting.lua", deep_nesting())
  for i = 1, n do write(("%s/random_%03d.lua"):format(dir, i), random_program()) end
  return
end

-- ---------------------------------------------------------------- dumper

if mode == "dump" then
  local file, prefix, how = arg[2], arg[3], arg[4]
  local chunk = assert(loadfile(file))
  local count, seen = 0, {}
  local function dump_one(f)
    -- Engine builtins written in internal bytecode (table.remove etc.) use
    -- opcodes the parser never emits; they are not compiler output.
    local info = debug.getinfo(f, "S")
    if info and info.short_src:match("^%[builtin") then return end
    for _, strip in ipairs({ false, true }) do
      local ok, bc = pcall(string.dump, f, strip)
      if ok then
        count = count + 1
        write(("%s.%d.bc"):format(prefix, count), bc)
      end
    end
  end
  local function visit(v, depth)
    if depth > 8 or seen[v] then return end
    local tv = type(v)
    if tv ~= "function" and tv ~= "table" then return end
    seen[v] = true
    if tv == "function" then
      dump_one(v)
      for i = 1, 255 do
        local name, up = debug.getupvalue(v, i)
        if not name then break end
        visit(up, depth + 1)
      end
    else
      for k, x in pairs(v) do visit(k, depth + 1); visit(x, depth + 1) end
    end
  end
  visit(chunk, 0)
  local results
  if how == "run" then
    results = { pcall(chunk) }
  elseif how and how:match("^require=") then
    results = { pcall(require, how:sub(9)) }
  end
  if results and results[1] then
    for i = 2, #results do visit(results[i], 1) end
  end
  print(count)
  return
end

io.stderr:write("usage: luajit bc_gen.lua gen OUTDIR N | dump FILE PREFIX [run|require=MOD]\n")
os.exit(2)
