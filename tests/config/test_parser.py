"""The SRS config grammar: tokens, quotes, comments, blocks, includes and error positions."""

import os

from twisted.trial import unittest

from srs_twisted.config.parser import MAX_INCLUDE_DEPTH, ConfigError, Directive, parse_file, parse_string


class ErrorAssertions:
    def assertError(self, text, line, col, fragment, path="<string>"):
        with self.assertRaises(ConfigError) as ctx:
            parse_string(text, path)
        e = ctx.exception
        self.assertEqual((e.path, e.line, e.col), (path, line, col), str(e))
        self.assertIn(fragment, e.message)
        self.assertEqual(str(e), f"{path}:{line}:{col}: {e.message}")
        return e


class TokenTests(unittest.TestCase):
    def test_directive_with_args_and_positions(self):
        root = parse_string("listen 1935 [::]:1935;\nmax_connections\t1000;\n")
        self.assertEqual(root.name, "")
        listen, conns = root.children
        self.assertEqual((listen.name, listen.args), ("listen", ["1935", "[::]:1935"]))
        self.assertEqual((listen.line, listen.col), (1, 1))
        self.assertEqual(listen.arg_pos, [(1, 8), (1, 13)])
        self.assertEqual((conns.name, conns.args, conns.line, conns.col), ("max_connections", ["1000"], 2, 1))
        self.assertEqual(conns.arg_pos, [(2, 17)])

    def test_semicolon_and_brace_end_a_bare_word(self):
        root = parse_string("a 1;b{c 2;}")
        self.assertEqual([d.name for d in root.children], ["a", "b"])
        self.assertEqual(root.children[0].args, ["1"])
        self.assertEqual(root.children[1].get("c").args, ["2"])

    def test_brace_inside_a_word_is_literal(self):
        # Only ; and { end a bare word; } stays part of it.
        root = parse_string("a x}y;")
        self.assertEqual(root.children[0].args, ["x}y"])

    def test_block_with_args(self):
        root = parse_string("vhost example.com {\n    ingest live {\n        enabled on;\n    }\n}\n")
        vhost = root.get("vhost")
        self.assertEqual(vhost.args, ["example.com"])
        ingest = vhost.get("ingest")
        self.assertEqual((ingest.args, ingest.line, ingest.col), (["live"], 2, 5))
        self.assertEqual(ingest.get("enabled").args, ["on"])
        self.assertEqual(ingest.get("enabled").path, "<string>")

    def test_empty_text_gives_an_empty_root(self):
        self.assertEqual(parse_string("").children, [])
        self.assertEqual(parse_string("  \n# only a comment\n\n").children, [])

    def test_crlf_line_endings(self):
        root = parse_string("listen 1935;\r\nvhost a {\r\n    enabled on;\r\n}\r\n")
        self.assertEqual(root.get("listen").args, ["1935"])
        self.assertEqual(root.get("vhost").get("enabled").line, 3)

    def test_utf8_bom_is_ignored(self):
        self.assertEqual(parse_string("\ufeffpid x.pid;").children[0].name, "pid")


class QuoteTests(unittest.TestCase, ErrorAssertions):
    def test_quotes_keep_special_characters(self):
        root = parse_string("""vf 'split [main][tmp]; [tmp] crop=iw:ih/2:0:0 {x} #no' "a b;{}#";""")
        self.assertEqual(root.children[0].args, ["split [main][tmp]; [tmp] crop=iw:ih/2:0:0 {x} #no", "a b;{}#"])

    def test_quoted_word_positions_point_at_the_quote(self):
        root = parse_string('device_id   "my device";')
        self.assertEqual(root.children[0].arg_pos, [(1, 13)])

    def test_the_other_quote_is_literal(self):
        root = parse_string("""a "it's" 'say "hi"';""")
        self.assertEqual(root.children[0].args, ["it's", 'say "hi"'])

    def test_no_escape_sequences(self):
        root = parse_string(r'a "x\"; b;')
        self.assertEqual(root.children[0].args, ["x\\"])
        self.assertEqual(root.children[1].name, "b")

    def test_quoted_word_may_be_followed_by_semicolon_or_brace(self):
        root = parse_string('a "x";engine "e"{ b; }')
        self.assertEqual(root.children[0].args, ["x"])
        self.assertEqual(root.children[1].args, ["e"])
        self.assertEqual(root.children[1].children[0].name, "b")

    def test_empty_quoted_word_is_dropped(self):
        self.assertEqual(parse_string('a "" b;').children[0].args, ["b"])

    def test_closing_quote_must_be_followed_by_a_separator(self):
        self.assertError('a "x"y;', 1, 6, "unexpected 'y'")

    def test_quote_inside_a_word_is_literal(self):
        self.assertEqual(parse_string('a b"c;').children[0].args, ['b"c'])

    def test_unterminated_quote(self):
        self.assertError('a "never closed;\n', 1, 17, "end of line")
        self.assertError('"never closed', 1, 14, "unexpected end of file")

    def test_a_quoted_name_alone_may_span_lines(self):
        # As in SRS: the end-of-line rule only applies once a word is complete.
        root = parse_string('"two\nlines" x;')
        self.assertEqual(root.children[0].name, "two\nlines")
        self.assertEqual(root.children[0].args, ["x"])


class CommentTests(unittest.TestCase, ErrorAssertions):
    def test_comment_after_a_directive(self):
        root = parse_string("listen 1935; # the rtmp port\n# whole line\nmax_connections 10;#tight\n")
        self.assertEqual([d.name for d in root.children], ["listen", "max_connections"])
        self.assertEqual(root.children[1].args, ["10"])

    def test_hash_inside_a_word_is_literal(self):
        root = parse_string("url http://h/a#frag;\nname a#b;")
        self.assertEqual(root.children[0].args, ["http://h/a#frag"])
        self.assertEqual(root.children[1].name, "name")
        self.assertEqual(root.children[1].args, ["a#b"])

    def test_comment_mid_directive_swallows_the_terminator(self):
        # "# x;" is a comment, so the directive is left open at the end of the line.
        self.assertError("listen 1935 # x;\n", 1, 17, 'directive "listen"')

    def test_comment_inside_a_block(self):
        root = parse_string("vhost a { # open\n  enabled on; # on\n  # done\n}")
        self.assertEqual([d.name for d in root.get("vhost").children], ["enabled"])


class GrammarErrorTests(unittest.TestCase, ErrorAssertions):
    def test_directive_must_fit_on_one_line(self):
        self.assertError("listen\n1935;", 1, 7, 'unexpected end of line in directive "listen"')
        self.assertError("vhost a {\n  listen 1935\n  1936;\n}", 2, 14, '"listen"')

    def test_cr_counts_as_end_of_line(self):
        self.assertError("listen 1935\r\n;", 1, 12, "end of line")

    def test_semicolon_without_name(self):
        self.assertError("listen 1935;\n  ;", 2, 3, "unexpected ';'")

    def test_brace_without_name(self):
        self.assertError("\n\n   {", 3, 4, "unexpected '{'")

    def test_empty_quoted_name(self):
        self.assertError('"";', 1, 3, "empty directive")
        self.assertError('"" ;', 1, 4, "unexpected ';'")

    def test_close_brace_at_top_level(self):
        self.assertError("listen 1935;\n}\n", 2, 1, 'unexpected "}"')

    def test_close_brace_with_pending_words(self):
        self.assertError("vhost a {\n    enabled on }\n", 2, 16, 'unexpected "}"')

    def test_eof_inside_block(self):
        e = self.assertError("vhost a {\n  play {\n    gop_cache on;\n  }\n", 5, 1, 'expecting "}"')
        self.assertIn('"vhost" opened at line 1', e.message)

    def test_eof_inside_directive(self):
        self.assertError("listen 1935", 1, 12, "unexpected end of file")
        self.assertError("pid", 1, 4, "unexpected end of file")

    def test_error_path_is_the_given_path(self):
        self.assertError("}", 1, 1, "unexpected", path="conf/x.conf")


class LookupTests(unittest.TestCase):
    def test_get_returns_the_first_match(self):
        root = parse_string("http_api { listen 1; }\nhttp_api { listen 2; }")
        self.assertEqual(root.get("http_api").get("listen").args, ["1"])
        self.assertEqual([d.get("listen").arg() for d in root.get_all("http_api")], ["1", "2"])
        self.assertIsNone(root.get("nope"))
        self.assertEqual(root.get_all("nope"), [])

    def test_arg_with_default(self):
        d = parse_string("a x y;").children[0]
        self.assertEqual((d.arg(), d.arg(1), d.arg(2), d.arg(2, "z")), ("x", "y", None, "z"))

    def test_walk_and_repr(self):
        root = parse_string("a { b { c; } }")
        self.assertEqual([d.name for d in root.walk()], ["", "a", "b", "c"])
        self.assertIn("<string>:1:9", repr(root.get("a").get("b").get("c")))

    def test_built_directive(self):
        d = Directive("vhost", ["x"], [Directive("enabled", ["on"])], 3, 4, "f.conf")
        self.assertEqual(d.get("enabled").arg(), "on")
        self.assertEqual(d.where, "f.conf:3:4")


class IncludeTests(unittest.TestCase, ErrorAssertions):
    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_include_at_root_splices_in_place(self):
        self.write("ports.conf", "listen 1935;\nmax_connections 10;\n")
        main = self.write("main.conf", "pid a.pid;\ninclude ports.conf;\nwork_dir ./;\n")
        root = parse_file(main)
        self.assertEqual([d.name for d in root.children], ["pid", "listen", "max_connections", "work_dir"])
        listen = root.get("listen")
        self.assertEqual((listen.path, listen.line, listen.col), (os.path.join(self.dir, "ports.conf"), 1, 1))

    def test_include_inside_vhost(self):
        self.write("vhost/hls.conf", "hls { enabled on; }\n")
        main = self.write("main.conf", "vhost a {\n  include vhost/hls.conf;\n  enabled on;\n}\n")
        vhost = parse_file(main).get("vhost")
        self.assertEqual([d.name for d in vhost.children], ["hls", "enabled"])
        self.assertEqual(vhost.get("hls").get("enabled").args, ["on"])

    def test_include_several_files_in_order(self):
        self.write("a.conf", "a 1;")
        self.write("b.conf", "b 2;")
        main = self.write("main.conf", "include a.conf b.conf;")
        self.assertEqual([d.name for d in parse_file(main).children], ["a", "b"])

    def test_include_relative_to_cwd_first(self):
        # SRS resolves include paths against the process cwd.
        cwd_dir = self.mktemp()
        os.makedirs(cwd_dir)
        with open(os.path.join(cwd_dir, "inc.conf"), "w") as f:
            f.write("from_cwd on;")
        self.write("inc.conf", "from_dir on;")
        main = os.path.abspath(self.write("main.conf", "include inc.conf;"))
        old = os.getcwd()
        os.chdir(cwd_dir)
        try:
            self.assertEqual(parse_file(main).children[0].name, "from_cwd")
        finally:
            os.chdir(old)
        self.assertEqual(parse_file(main).children[0].name, "from_dir")

    def test_included_file_errors_point_into_it(self):
        inc = self.write("bad.conf", "ok 1;\nbroken\n2;")
        main = self.write("main.conf", "include bad.conf;")
        with self.assertRaises(ConfigError) as ctx:
            parse_file(main)
        self.assertEqual((ctx.exception.path, ctx.exception.line, ctx.exception.col), (inc, 2, 7))

    def test_missing_include(self):
        main = self.write("main.conf", "listen 1935;\ninclude a.conf nope.conf;")
        self.write("a.conf", "")
        with self.assertRaises(ConfigError) as ctx:
            parse_file(main)
        self.assertEqual((ctx.exception.line, ctx.exception.col), (2, 16))
        self.assertIn("'nope.conf' not found", ctx.exception.message)

    def test_include_needs_a_file(self):
        self.assertError("include;", 1, 1, "at least one file")

    def test_include_with_block_is_rejected(self):
        self.assertError("include x {", 1, 1, "not a block")

    def test_include_cycle(self):
        self.write("a.conf", "a 1;\ninclude b.conf;\n")
        self.write("b.conf", "b 1;\ninclude a.conf;\n")
        main = self.write("main.conf", "include a.conf;")
        with self.assertRaises(ConfigError) as ctx:
            parse_file(main)
        e = ctx.exception
        self.assertEqual((e.path, e.line, e.col), (os.path.join(self.dir, "b.conf"), 2, 9))
        self.assertIn("include cycle", e.message)

    def test_self_include(self):
        main = self.write("main.conf", "include main.conf;")
        with self.assertRaises(ConfigError) as ctx:
            parse_file(main)
        self.assertEqual((ctx.exception.line, ctx.exception.col), (1, 9))
        self.assertIn("include cycle", ctx.exception.message)

    def test_include_depth_limit(self):
        for i in range(MAX_INCLUDE_DEPTH + 1):
            self.write(f"d{i}.conf", f"level{i} on;\ninclude d{i + 1}.conf;\n")
        self.write(f"d{MAX_INCLUDE_DEPTH + 1}.conf", "bottom on;\n")
        with self.assertRaises(ConfigError) as ctx:
            parse_file(os.path.join(self.dir, "d0.conf"))
        self.assertIn(f"deeper than {MAX_INCLUDE_DEPTH}", ctx.exception.message)
        self.assertEqual(ctx.exception.path, os.path.join(self.dir, f"d{MAX_INCLUDE_DEPTH}.conf"))

        # Exactly MAX_INCLUDE_DEPTH nested includes are fine.
        self.write(f"d{MAX_INCLUDE_DEPTH}.conf", "bottom on;\n")
        root = parse_file(os.path.join(self.dir, "d0.conf"))
        self.assertEqual(root.children[-1].name, "bottom")

    def test_unreadable_file(self):
        with self.assertRaises(ConfigError) as ctx:
            parse_file(os.path.join(self.dir, "absent.conf"))
        self.assertIn("cannot read", ctx.exception.message)
