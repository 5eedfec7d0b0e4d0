//! STAR / CIF syntax: a streaming lexer and the parser that builds blocks, pairs and loops.

use super::table::Table;
use super::{DataBlock, Item, StarFile};
use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, PartialEq)]
enum Token<'a> {
    DataBlock(&'a str),
    Loop,
    Stop,
    Tag(&'a str),
    Value(&'a str),
}

/// Splits STAR text into tokens, skipping comments but keeping those that precede a block.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    comments: Vec<String>,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { text, pos: 0, line: 1, comments: Vec::new() }
    }

    fn at_line_start(&self) -> bool {
        self.pos == 0 || self.text.as_bytes()[self.pos - 1] == b'\n'
    }

    /// The next token and its line, or `None` at the end of the text.
    fn next(&mut self) -> Result<Option<(Token<'a>, usize)>> {
        let bytes = self.text.as_bytes();
        loop {
            while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
                if bytes[self.pos] == b'\n' {
                    self.line += 1;
                }
                self.pos += 1;
            }
            if self.pos >= bytes.len() {
                return Ok(None);
            }
            if bytes[self.pos] == b'#' {
                let end = self.text[self.pos..].find('\n').map_or(bytes.len(), |i| self.pos + i);
                let line_start = self.text[..self.pos].rfind('\n').map_or(0, |i| i + 1);
                if self.text[line_start..self.pos].trim().is_empty() {
                    self.comments.push(self.text[self.pos..end].trim_end().to_string());
                }
                self.pos = end;
                continue;
            }
            break;
        }
        let line = self.line;
        let start = self.pos;
        let c = bytes[start];
        if c == b';' && self.at_line_start() {
            return self.text_field(start, line).map(Some);
        }
        if c == b'\'' || c == b'"' {
            // a quote closes only where whitespace or the line's end follows it
            let mut i = start + 1;
            loop {
                if i >= bytes.len() || bytes[i] == b'\n' {
                    return Err(Error::format(format!(
                        "quoted value starting with {} is not closed on its line",
                        c as char
                    ))
                    .at_line(line));
                }
                if bytes[i] == c && (i + 1 >= bytes.len() || bytes[i + 1].is_ascii_whitespace()) {
                    break;
                }
                i += 1;
            }
            self.pos = i + 1;
            return Ok(Some((Token::Value(&self.text[start + 1..i]), line)));
        }
        let end =
            bytes[start..].iter().position(|b| b.is_ascii_whitespace()).map_or(bytes.len(), |i| start + i);
        self.pos = end;
        let word = &self.text[start..end];
        let lower = |prefix: &str| word.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix));
        let token = if lower("data_") {
            Token::DataBlock(&word[5..])
        } else if word.eq_ignore_ascii_case("loop_") {
            Token::Loop
        } else if word.eq_ignore_ascii_case("stop_") {
            Token::Stop
        } else if lower("save_") || word.eq_ignore_ascii_case("global_") {
            return Err(Error::unsupported(format!("STAR '{word}' frames are not supported")).at_line(line));
        } else if let Some(tag) = word.strip_prefix('_') {
            Token::Tag(tag)
        } else {
            Token::Value(word)
        };
        Ok(Some((token, line)))
    }

    /// A CIF text field: from a ';' at a line start to the next line that starts with ';'.
    fn text_field(&mut self, start: usize, line: usize) -> Result<(Token<'a>, usize)> {
        let body = start + 1;
        match self.text[body..].find("\n;") {
            Some(i) => {
                let end = body + i;
                self.line += self.text[body..end + 1].matches('\n').count();
                self.pos = end + 2;
                let value = self.text[body..end].strip_suffix('\r').unwrap_or(&self.text[body..end]);
                Ok((Token::Value(value), line))
            }
            None => Err(Error::format("text field opened with ';' is never closed").at_line(line)),
        }
    }
}

/// Parses STAR (RELION) or CIF text.
pub fn parse(text: &str) -> Result<StarFile> {
    let mut lexer = Lexer::new(text);
    let mut blocks: Vec<DataBlock> = Vec::new();
    let mut pending = lexer.next()?;
    while let Some((token, line)) = pending.take() {
        // keep only the comments just before a data_ line
        let keep_comments = matches!(token, Token::DataBlock(_));
        if !keep_comments {
            lexer.comments.clear();
        }
        match token {
            Token::DataBlock(name) => {
                let comments = std::mem::take(&mut lexer.comments);
                blocks.push(DataBlock { name: name.to_string(), comments, items: Vec::new() });
                pending = lexer.next()?;
            }
            Token::Loop => {
                let block = current_block(&mut blocks, "loop_", line)?;
                let (table, next) = parse_loop(&mut lexer, line)?;
                block.items.push(Item::Loop(table));
                if !matches!(next, Some((Token::DataBlock(_), _))) {
                    lexer.comments.clear();
                }
                pending = next;
            }
            Token::Tag(tag) => {
                let block = current_block(&mut blocks, tag, line)?;
                let value = match lexer.next()? {
                    Some((Token::Value(v), _)) => v,
                    _ => {
                        return Err(Error::format(format!("_{tag} has no value"))
                            .at_line(line)
                            .in_field(tag));
                    }
                };
                if block.pair(tag).is_some() {
                    return Err(Error::new(ErrorKind::DuplicateField, format!("_{tag} appears twice"))
                        .at_line(line)
                        .in_field(tag));
                }
                block.items.push(Item::Pair { tag: tag.to_string(), value: value.to_string() });
                pending = lexer.next()?;
            }
            Token::Stop => pending = lexer.next()?,
            Token::Value(v) => {
                return Err(
                    Error::format(format!("value '{v}' stands outside any loop_ or tag")).at_line(line)
                );
            }
        }
    }
    Ok(StarFile { blocks })
}

fn current_block<'b>(blocks: &'b mut [DataBlock], what: &str, line: usize) -> Result<&'b mut DataBlock> {
    blocks
        .last_mut()
        .ok_or_else(|| Error::format(format!("'{what}' comes before any data_ block")).at_line(line))
}

type Next<'a> = Option<(Token<'a>, usize)>;

/// Parses the tags and values of a loop; returns the table and the token after it.
fn parse_loop<'a>(lexer: &mut Lexer<'a>, loop_line: usize) -> Result<(Table, Next<'a>)> {
    let mut names: Vec<&str> = Vec::new();
    let mut next = lexer.next()?;
    while let Some((Token::Tag(tag), line)) = next {
        if names.contains(&tag) {
            return Err(Error::new(
                ErrorKind::DuplicateField,
                format!("column _{tag} appears twice in the loop"),
            )
            .at_line(line)
            .in_field(tag));
        }
        names.push(tag);
        next = lexer.next()?;
    }
    if names.is_empty() {
        return Err(Error::format("loop_ has no column tags").at_line(loop_line));
    }
    let mut table = Table::new(&names)?;
    let mut col = 0;
    let mut last_line = loop_line;
    while let Some((Token::Value(v), line)) = next {
        table.push_value(col, v).map_err(|e| e.at_line(line))?;
        col = (col + 1) % names.len();
        last_line = line;
        next = lexer.next()?;
    }
    if col != 0 {
        return Err(Error::format(format!(
            "row {} of the loop has {col} values but the loop has {} columns",
            table.len() + 1,
            names.len()
        ))
        .at_line(last_line)
        .at_row(table.len() + 1));
    }
    if let Some((Token::Stop, _)) = next {
        next = lexer.next()?;
    }
    Ok((table, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_loops_comments_and_quotes() {
        let text = "# version 30001\ndata_optics\n\nloop_\n_rlnA #1\n_rlnB #2\n1 'two words'\n3 \"\"\n\n# version 30001\ndata_general\n_rlnX 5\n_rlnY \"it's\"\n";
        let star = parse(text).unwrap();
        assert_eq!(star.blocks.len(), 2);
        assert_eq!(star.blocks[0].comments, ["# version 30001"]);
        let t = star.blocks[0].table().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(0, 1), "two words");
        assert_eq!(t.get(1, 1), "");
        assert_eq!(star.blocks[1].pair("rlnY"), Some("it's"));
    }

    #[test]
    fn cif_text_fields_and_values_on_the_next_line() {
        let text = "data_1AKE\n_struct.title\n;ADENYLATE KINASE\nclosed form\n;\n_entry.id\n1AKE\n";
        let star = parse(text).unwrap();
        assert_eq!(star.blocks[0].pair("struct.title"), Some("ADENYLATE KINASE\nclosed form"));
        assert_eq!(star.blocks[0].pair("entry.id"), Some("1AKE"));
    }

    #[test]
    fn multibyte_words_near_keywords_do_not_split_characters() {
        let star = parse("data_x\n_a dat€x\n_b loo€\n").unwrap();
        assert_eq!(star.blocks[0].pair("a"), Some("dat€x"));
        assert_eq!(parse(&star.to_string()).unwrap(), star);
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let e = parse("data_x\nloop_\n_a\n_b\n1 2\n3\n").unwrap_err();
        assert_eq!(e.line(), Some(6));
        assert!(e.to_string().contains("row 2"), "{e}");

        let e = parse("data_x\nloop_\n_a\n_a\n1 2\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DuplicateField);
        assert_eq!((e.line(), e.field()), (Some(4), Some("a")));

        let e = parse("data_x\n_a\n_b 1\n").unwrap_err();
        assert_eq!((e.line(), e.field()), (Some(2), Some("a")));

        let e = parse("data_x\n_a 'open\n").unwrap_err();
        assert_eq!(e.line(), Some(2));

        assert_eq!(parse("1 2 3\n").unwrap_err().line(), Some(1));
    }
}
