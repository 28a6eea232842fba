"""``{% extends %}`` as Django writes it, the root template's blocks listed once (see
TEMPLATES' ``builtins``, where this library comes after Django's own and so takes the
tag's name).

At every render, Django's ``ExtendsNode`` walks the whole node tree of the template it
extends to list that template's blocks; for the layout, about a tenth of what a page of
the layout alone costs. The tree of a compiled template does not change, so the list is
kept with it (a template read again, once changed, is a new one)."""

from weakref import WeakKeyDictionary

from django import template
from django.template.base import TextNode
from django.template.loader_tags import BLOCK_CONTEXT_KEY, BlockContext, BlockNode, ExtendsNode, do_extends

register = template.Library()
_root_blocks = WeakKeyDictionary()  # a compiled template: its blocks, {} when it extends another


def root_blocks(compiled):
    """The blocks of ``compiled`` by name when it is the root of the inheritance (its
    first node but text is not an ``{% extends %}``), as Django's render lists them."""
    blocks = _root_blocks.get(compiled)
    if blocks is None:
        first = next((node for node in compiled.nodelist if not isinstance(node, TextNode)), None)
        blocks = {}
        if first is not None and not isinstance(first, ExtendsNode):
            blocks = {node.name: node for node in compiled.nodelist.get_nodes_by_type(BlockNode)}
        _root_blocks[compiled] = blocks
    return blocks


class ExtendsOnceNode(ExtendsNode):
    def render(self, context):
        # Django's ExtendsNode.render, the root's blocks from root_blocks.
        compiled_parent = self.get_parent(context)
        if BLOCK_CONTEXT_KEY not in context.render_context:
            context.render_context[BLOCK_CONTEXT_KEY] = BlockContext()
        block_context = context.render_context[BLOCK_CONTEXT_KEY]
        block_context.add_blocks(self.blocks)
        if blocks := root_blocks(compiled_parent):
            block_context.add_blocks(blocks)
        with context.render_context.push_state(compiled_parent, isolated_context=False):
            return compiled_parent._render(context)


@register.tag("extends")
def extends(parser, token):
    node = do_extends(parser, token)  # Django's checks and parsing
    return ExtendsOnceNode(node.nodelist, node.parent_name)
